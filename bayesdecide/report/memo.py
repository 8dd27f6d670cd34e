"""The decision memo, following the seed's structure, from a run summary and its model card.

Sections: Decision, Estimand, Identification, Primary effect, Guardrails, Economics (with
sensitivity and break-even), Heterogeneity, Recommendation, Rollout conditions, Appendix
(assumptions, data checks, model and diagnostics, all effects, risk register, monitoring plan,
feature dictionary, lineage).

:func:`build_memo` turns ``summary`` (the dict written to ``summary.json``) and the
:class:`~bayesdecide.card.ModelCard` into a :class:`~bayesdecide.report.document.Document`;
:func:`write_memo` writes ``memo.md`` and a self-contained ``memo.html``. Every number comes from
``summary``, so a memo can be re-rendered without the fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bayesdecide.report.document import (
    Bullets,
    Callout,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
    to_markdown,
)
from bayesdecide.report.html import render_html
from bayesdecide.report.recommend import BLOCKED, NO_LAUNCH, recommend

# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------


def usd(x: float | None, digits: int = 0) -> str:
    """Dollars with thousands separators: ``$22,945``, ``-$1,250.50``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    s = f"${abs(x):,.{digits}f}"
    return f"-{s}" if x < 0 and round(abs(x), digits) > 0 else s


def pct(p: float | None) -> str:
    """A probability as a percentage, with ``>99%``/``<1%`` at the extremes."""
    if p is None or not np.isfinite(p):
        return "n/a"
    if 0.995 <= p < 1:
        return ">99%"
    if 0 < p < 0.005:
        return "<1%"
    return f"{p:.0%}"


def effect_text(x: float | None, outcome: Mapping[str, Any], signed: bool = True) -> str:
    """An effect in the outcome's unit: dollars, percentage points (binary) or counts."""
    if x is None or not np.isfinite(x):
        return "n/a"
    kind = outcome.get("kind", "continuous")
    unit = str(outcome.get("unit", ""))
    sign = "+" if signed and x > 0 else ("-" if x < 0 else "")
    a = abs(x)
    if kind == "binary":
        return f"{sign}{100 * a:.2f} pp"
    if "dollar" in unit:
        return f"{sign}${a:,.2f}"
    if kind == "count":
        return f"{sign}{a:.3f}"
    return f"{sign}{a:.3g}"


def _interval(lo: float, hi: float, outcome: Mapping[str, Any]) -> str:
    return f"{effect_text(lo, outcome)} to {effect_text(hi, outcome)}"


def _unit_word(outcome: Mapping[str, Any]) -> str:
    kind = outcome.get("kind")
    if kind == "binary":
        return "percentage points"
    if kind == "count":
        return str(outcome.get("unit") or "per customer")
    return str(outcome.get("unit") or "")


def _label(summary: Mapping[str, Any], outcome: str) -> str:
    return summary.get("outcomes", {}).get(outcome, {}).get("label", outcome)


def _ok(b: bool) -> str:
    return "pass" if b else "**FAIL**"


# ---------------------------------------------------------------------------------------------
# memo
# ---------------------------------------------------------------------------------------------


def build_memo(
    summary: Mapping[str, Any],
    card: Any = None,
    figures: Mapping[str, Path] | None = None,
    *,
    figure_prefix: str = "figures/",
) -> Document:
    """The memo as a :class:`Document`.

    Parameters
    ----------
    summary:
        The run summary (``summary.json`` content).
    card:
        The :class:`~bayesdecide.card.ModelCard` (risk register, monitoring plan, feature
        dictionary); optional.
    figures:
        Figure name -> PNG path. Known names: ``value_posterior``, ``policy_values``,
        ``guardrails``, ``sensitivity``, ``effects_by_factor``, ``shrinkage``,
        ``region_comparison``.
    figure_prefix:
        Folder of the figures relative to the memo (for Markdown links).
    """
    figures = dict(figures or {})
    s = summary
    rec = s.get("recommendation") or recommend(s)
    outcomes = s.get("outcomes", {})
    primary = s.get("primary_outcome") or next(iter(s.get("effects", {})), "")
    po = outcomes.get(primary, {})
    settings = s.get("settings", {})
    info = s.get("card", {})
    title = f"Decision memo: {info.get('title') or info.get('name', 'experiment')}"
    run = s.get("run", {})
    subtitle = (
        f"Card {info.get('name', '?')} v{info.get('version', '?')} · run {run.get('id', '?')} · "
        f"{run.get('created', '')} · {run.get('chains', '?')} chains × {run.get('draws', '?')} draws"
    )
    if run.get("overrides"):
        subtitle += " · re-rendered with " + ", ".join(
            f"{k}={v}" for k, v in run["overrides"].items()
        )
    doc = Document(title=title, subtitle=subtitle)

    def fig(name: str, caption: str) -> None:
        if name in figures and Path(figures[name]).exists():
            p = Path(figures[name])
            doc.add(Figure(p, caption, rel=f"{figure_prefix}{p.name}"))

    policies = s.get("policies", {})
    labels = s.get("policy_labels", {})

    def pname(p: str | None) -> str:
        return labels.get(p, p) if p else "n/a"

    rec_policy = rec.get("policy") or rec.get("rule_policy")
    n_elig = settings.get("n_eligible", settings.get("eligible"))
    n_elig = int(n_elig) if n_elig is not None else None
    fixed = settings.get("fixed_cost")

    # headline -----------------------------------------------------------------------------------
    if rec["decision"] == BLOCKED:
        doc.add(
            Callout(
                f"**{BLOCKED}.** " + " ".join(rec["reasons"][:2]) + " The numbers below are "
                "provisional and must not be used for a launch decision.",
                "bad",
            )
        )
    elif rec["decision"] == NO_LAUNCH:
        doc.add(Callout(f"**Recommendation: {NO_LAUNCH}.** " + rec["reasons"][-1], "warn"))
    else:
        row = policies[rec_policy]
        doc.add(
            Callout(
                f"**Recommendation: {rec['decision']} — {pname(rec_policy)}.** Expected launch value "
                f"{usd(row['expected_value'])} (80% interval {usd(row['p10'])} to "
                f"{usd(row['p90'])}); P(value > 0) = {pct(row['prob_positive'])}; passes every "
                "pre-registered rule.",
                "good",
            )
        )

    # 1 decision ---------------------------------------------------------------------------------
    doc.add(Heading("1. Decision"))
    doc.add(
        Paragraph(
            info.get("decision")
            or "Whether to launch the intervention to the eligible population, target it, or hold."
        )
    )
    if info.get("description"):
        doc.add(Paragraph(info["description"]))
    if info.get("owner"):
        doc.add(Paragraph(f"Decision owner: {info['owner']}."))

    # 2 estimand ---------------------------------------------------------------------------------
    exp = s.get("experiment", {})
    doc.add(Heading("2. Estimand"))
    doc.add(
        Paragraph(
            (
                exp.get("estimand") or "Intention-to-treat effect of assignment, per assigned unit"
            ).rstrip(".")
            + f". Horizon: {exp.get('horizon', 'as measured')}. Population: "
            f"{exp.get('population', 'the experiment population')}."
        )
    )
    doc.add(
        Paragraph(
            "Effects are per assigned customer (intention to treat); money in dollars per customer "
            f"over the horizon. Launch values are in dollars for **{n_elig:,}** eligible customers "
            f"after a **{usd(fixed)}** fixed implementation cost."
            if n_elig is not None and fixed is not None
            else "Launch values are in dollars at launch scale."
        )
    )

    # 3 identification ---------------------------------------------------------------------------
    data = s.get("data", {})
    checks = s.get("checks", {}).get("results", [])
    doc.add(Heading("3. Identification"))
    doc.add(
        Paragraph(
            f"{str(exp.get('randomization_unit', 'unit')).capitalize()}-level randomized "
            f"experiment: **{data.get('n_units', 0):,}** units, "
            f"{data.get('n_treatment', 0):,} treated and {data.get('n_control', 0):,} control "
            f"(designed treatment share {exp.get('assignment_share', 0.5):.0%}), in "
            f"{data.get('n_cells', '?')} cells of {' × '.join(s.get('hierarchy', {}).get('factors', []))}. "
            "Random assignment identifies the effects; covariate adjustment "
            f"({', '.join(exp.get('covariates', [])) or 'none'}) only sharpens them."
        )
    )
    data_checks = [c for c in checks if c.get("kind") == "data"]
    if data_checks:
        doc.add(
            Table(
                ["Check", "Result", "Detail"],
                [[c["name"], _ok(c["passes"]), c["detail"]] for c in data_checks],
                align="llr",
            )
        )
    if data.get("single_arm_cells"):
        doc.add(
            Paragraph(
                f"Cells with only one arm ({', '.join(data['single_arm_cells'])}) contribute no "
                "effect estimate; their effects are predicted by the hierarchy and they keep their "
                "share of the launch population."
            )
        )

    # 4 primary effect ---------------------------------------------------------------------------
    eff = s.get("effects", {})
    raw = s.get("raw_effects", {})
    doc.add(Heading("4. Primary effect"))
    if primary in eff:
        e = eff[primary]
        text = (
            f"Assignment changed **{_label(s, primary).lower()}** by **{effect_text(e['mean'], po)}** "
            f"per assigned customer (posterior mean; 95% credible interval "
            f"{_interval(e['ci_lower'], e['ci_upper'], po)}; P(effect > 0) = "
            f"{pct(e.get('prob_positive'))})."
        )
        if primary in raw:
            r = raw[primary]
            text += (
                f" The unpooled covariate-adjusted estimate is {effect_text(r['estimate'], po)} "
                f"± {effect_text(1.96 * r['std_error'], po, signed=False)} (95%)."
            )
        doc.add(Paragraph(text))
    rows = []
    for name, e in eff.items():
        o = outcomes.get(name, {})
        rows.append(
            [
                _label(s, name),
                o.get("role", ""),
                effect_text(e["mean"], o),
                _interval(e["ci_lower"], e["ci_upper"], o),
                pct(e.get("prob_positive")),
                effect_text(raw[name]["estimate"], o) if name in raw else "",
            ]
        )
    if rows:
        doc.add(
            Table(
                ["Outcome", "Role", "Posterior mean", "95% credible interval", "P(> 0)", "Raw"],
                rows,
                align="llrrrr",
                caption="All-customer effect per assigned customer (experiment mix). Binary "
                "outcomes in percentage points; Raw = unpooled covariate-adjusted estimate.",
            )
        )

    # 5 guardrails -------------------------------------------------------------------------------
    guard = s.get("guardrails", [])
    doc.add(Heading("5. Guardrails"))
    guard_outcomes = [n for n, o in outcomes.items() if o.get("role") == "guardrail"]
    if guard_outcomes:
        parts = []
        for n in guard_outcomes:
            if n in eff:
                o = outcomes[n]
                parts.append(
                    f"{_label(s, n).lower()} changed by {effect_text(eff[n]['mean'], o)} "
                    f"(95% CrI {_interval(eff[n]['ci_lower'], eff[n]['ci_upper'], o)})"
                )
        if parts:
            doc.add(Paragraph("Treating everyone: " + "; ".join(parts) + "."))
    guard = [g for g in guard if g["policy"] != "treat_none"]  # the status quo is not held to them
    rules = list(dict.fromkeys(g["rule"] for g in guard))
    pols = list(dict.fromkeys(g["policy"] for g in guard))
    if guard:
        descr = {g["rule"]: g.get("description") or g["rule"] for g in guard}
        doc.add(
            Paragraph(
                "Pre-registered rules (fixed before the results were seen), evaluated as posterior "
                "probabilities for every policy:"
            )
        )
        doc.add(Bullets([f"**{r}**: {descr[r]}" for r in rules]))
        lookup = {(g["rule"], g["policy"]): g for g in guard}
        table_rows = []
        for p in pols:
            row = [pname(p)]
            for r in rules:
                g = lookup.get((r, p))
                row.append("" if g is None else f"{pct(g['probability'])} {_ok(g['passes'])}")
            table_rows.append(row)
        need = {}
        for g in guard:
            cmp_ = "≤" if g.get("comparison") == "<=" else "≥"
            need[g["rule"]] = f"{g['rule']} ({cmp_} {pct(g['threshold'])})"
        doc.add(
            Table(
                ["Policy", *[need[r] for r in rules]],
                table_rows,
                align="l" + "r" * len(rules),
                caption="Posterior probability per rule and policy; the header gives what the "
                "rule needs (for a loss rule, the probability of the loss, which must stay at or "
                "below the limit). Treating nobody is the status quo and is not held to the rules.",
            )
        )
    fig("guardrails", "Rule × policy: posterior probability and pass/fail.")

    # 6 economics --------------------------------------------------------------------------------
    doc.add(Heading("6. Economics"))
    weights = settings.get("weights", {})
    if weights:
        terms = " ".join(
            f"{'+' if w >= 0 and i else ('-' if w < 0 else '')} "
            f"{'' if abs(w) == 1 else f'{abs(w):g} × '}{_label(s, o).lower()}"
            for i, (o, w) in enumerate(weights.items())
        ).strip()
        doc.add(
            Paragraph(
                f"Value per treated customer = {terms} (dollars). "
                + f"Launch value = {n_elig:,} eligible × mix-weighted value of the treated cells "
                f"− fixed cost {usd(fixed)}"
                + (
                    " (scaled by the treated share, at least "
                    f"{settings.get('min_cost_share', 0.05):.0%})"
                    if settings.get("fixed_cost_scaling") == "treated_share"
                    else ""
                )
                + f"; transport multiplier {settings.get('transport_multiplier', 1):g} on "
                f"{', '.join(_label(s, o).lower() for o in settings.get('transport_outcomes', [])) or 'the benefits'}."
            )
        )
    if policies:
        order = sorted(policies, key=lambda p: -policies[p]["expected_value"])
        doc.add(
            Table(
                [
                    "Policy",
                    "Treated share",
                    "Expected value",
                    "P(value > 0)",
                    f"P(loss > {usd(settings.get('loss_threshold', 500_000))})",
                    "P10",
                    "Median",
                    "P90",
                    "P(best)",
                ],
                [
                    [
                        f"**{pname(p)}**" if p == rec_policy else pname(p),
                        pct(policies[p].get("treated_share", float("nan"))),
                        usd(policies[p]["expected_value"]),
                        pct(policies[p]["prob_positive"]),
                        pct(policies[p]["prob_large_loss"]),
                        usd(policies[p]["p10"]),
                        usd(policies[p]["p50"]),
                        usd(policies[p]["p90"]),
                        pct(policies[p].get("prob_best")),
                    ]
                    for p in order
                ],
                caption="Launch value in dollars, posterior over the pooled cell effects.",
            )
        )
    if s.get("optimal_description") and "optimal" in policies:
        doc.add(
            Paragraph(
                f"*{pname('optimal')}* is the Bayes-optimal targeting under the pre-registered "
                f"rules: it {s['optimal_description']}"
            )
        )
    fig("policy_values", "Expected launch value per policy with 10th-90th percentile.")
    fig(
        "value_posterior",
        f"Posterior of launch value for {pname(rec_policy) if rec_policy else 'the leading policy'} "
        "(dollars).",
    )
    be = s.get("break_even", {})
    if be:
        doc.add(Heading("Sensitivity and break-even", level=3))
        be_rows = []
        for name, b in be.items():
            direction = b.get("direction")
            need = (
                "above break-even"
                if direction == "above"
                else ("below break-even" if direction == "below" else "")
            )
            be_rows.append(
                [
                    name.replace("_", " "),
                    pname(b.get("policy")),
                    _num(b.get("current")),
                    _num(b.get("median")),
                    f"{_num(b.get('ci_lower'))} to {_num(b.get('ci_upper'))}",
                    need,
                ]
            )
        doc.add(
            Table(
                [
                    "Assumption",
                    "Policy",
                    "Assumed",
                    "Break-even (median)",
                    f"{s.get('settings', {}).get('ci_prob', 0.95):.0%} interval",
                    "Value is positive when the assumption is",
                ],
                be_rows,
                align="llrrrl",
                caption="Break-even: the assumption's value at which launch value is zero, per "
                "posterior draw (median and interval of those draws).",
            )
        )
        tm = be.get("transport_multiplier")
        if tm and tm.get("median") is not None and np.isfinite(tm["median"]):
            doc.add(
                Paragraph(
                    f"If the launch keeps less than **{tm['median']:.2f}** of the experiment's "
                    f"benefit (transport multiplier), {pname(tm.get('policy'))} loses money."
                )
            )
        ap = be.get("annoyance_penalty")
        if ap and ap.get("median") is not None and np.isfinite(ap["median"]):
            doc.add(
                Paragraph(
                    f"If an annoyed customer costs more than **{usd(ap['median'])}** (assumed "
                    f"{usd(ap.get('current'))}), {pname(ap.get('policy'))} loses money."
                    if ap.get("direction") == "below"
                    else f"Break-even annoyance penalty: {usd(ap['median'])}."
                )
            )
    fig("sensitivity", "Launch value as each assumption varies; break-even marked.")

    # 7 heterogeneity ----------------------------------------------------------------------------
    het = s.get("heterogeneity", {})
    doc.add(Heading("7. Heterogeneity"))
    doc.add(
        Paragraph(
            f"Effects on {_label(s, primary).lower()} by pre-treatment group, from the "
            "hierarchical model: each group's estimate borrows strength from the others (partial "
            "pooling), so small groups are pulled toward the overall effect instead of being read "
            "at face value."
        )
    )
    for factor, levels in het.items():
        doc.add(Heading(f"By {factor.replace('_', ' ')}", level=3))
        doc.add(
            Table(
                [
                    factor.replace("_", " ").capitalize(),
                    "Customers",
                    "Pooled mean",
                    "90% interval",
                    "P(> 0)",
                    "Raw",
                ],
                [
                    [
                        lv["level"],
                        f"{int(lv.get('n', 0)):,}",
                        effect_text(lv["mean"], po),
                        _interval(lv["ci_lower"], lv["ci_upper"], po),
                        pct(lv.get("prob_positive")),
                        effect_text(lv.get("raw"), po),
                    ]
                    for lv in levels
                ],
            )
        )
    fig("effects_by_factor", "Raw (grey) and pooled (blue) effects per group.")
    fig("shrinkage", "Per-cell raw estimates and pooled posteriors: partial pooling at work.")
    comp = s.get("region_comparison")
    if comp:
        f = comp.get("factor", "region")
        doc.add(Heading(f"Comparing {f.replace('_', ' ')}s", level=3))
        summ = comp.get("summary", [])
        if summ:
            doc.add(
                Table(
                    [f.capitalize(), "Net value per customer", "90% interval", "P(> 0)", "P(best)"],
                    [
                        [
                            r["level"],
                            usd(r["mean"], 2),
                            f"{usd(r['ci_lower'], 2)} to {usd(r['ci_upper'], 2)}",
                            pct(r.get("prob_positive")),
                            pct(r.get("prob_best")),
                        ]
                        for r in summ
                    ],
                )
            )
        fig("region_comparison", f"P(row {f}'s effect > column {f}'s effect).")

    # 8 recommendation ---------------------------------------------------------------------------
    doc.add(Heading("8. Recommendation"))
    word = rec["decision"] + (f": {pname(rec['policy'])}" if rec.get("policy") else "")
    doc.add(
        Callout(
            f"**{word}.**",
            "bad" if rec.get("blocked") else ("good" if rec.get("launch") else "warn"),
        )
    )
    doc.add(Bullets(rec["reasons"]))
    if rec.get("blocked") and rec.get("rule_policy") in policies:
        rp = policies[rec["rule_policy"]]
        doc.add(
            Paragraph(
                "Once the checks pass, the rule below would pick "
                f"**{pname(rec['rule_policy'])}** on the current (provisional) numbers: expected "
                f"launch value {usd(rp['expected_value'])}, P(value > 0) = "
                f"{pct(rp['prob_positive'])}."
            )
        )
    doc.add(
        Paragraph(
            "Decision rule (pre-registered): no launch recommendation while a data check or a "
            "sampler diagnostic fails; otherwise recommend the policy with the highest expected "
            "launch value among those that pass every rule; if none has a positive expected "
            "value, do not launch."
        )
    )
    voi = s.get("value_of_information")
    if voi:
        parts = [
            f"{k.replace('_', ' ')}: {usd(v)}" for k, v in voi.items() if isinstance(v, int | float)
        ]
        if parts:
            doc.add(
                Paragraph(
                    "Value of information (dollars at launch scale; an upper bound on what more "
                    "evidence could be worth): " + "; ".join(parts) + "."
                )
            )

    # 9 rollout conditions -----------------------------------------------------------------------
    doc.add(Heading("9. Rollout conditions"))
    mon = getattr(card, "monitoring", None)
    items = []
    if mon is not None and mon.holdout_share:
        items.append(f"Keep a randomized holdout of {mon.holdout_share:.0%} of eligible customers.")
    if mon is not None and mon.cadence:
        items.append(f"Review guardrails {mon.cadence}: " + "; ".join(mon.metrics) + ".")
    if mon is not None:
        items += [f"Stop rule: {r}." for r in mon.stop_rules]
    tm = be.get("transport_multiplier") if be else None
    if tm and tm.get("median") is not None and np.isfinite(tm["median"]):
        items.append(
            f"Revisit the decision if the rollout keeps less than {tm['median']:.2f} of the "
            "experiment's benefit (break-even transport multiplier)."
        )
    if mon is not None and mon.review:
        items.append(mon.review)
    if not items:
        items = ["Keep a holdout and monitor the guardrail outcomes weekly."]
    doc.add(Bullets(items))

    # appendix -----------------------------------------------------------------------------------
    doc.add(Heading("Appendix"))
    doc.add(Heading("A. Assumptions", level=3))
    asm_rows = [
        [
            "Eligible customers at launch",
            f"{n_elig:,}" if n_elig is not None else "n/a",
            "card [launch]",
        ],
        ["Fixed implementation cost", usd(fixed), "card [launch]"],
        ["Fixed-cost rule", str(settings.get("fixed_cost_scaling", "constant")), "card [launch]"],
        ["Transport multiplier", _num(settings.get("transport_multiplier", 1.0)), "card [launch]"],
        ["Large-loss threshold", usd(settings.get("loss_threshold")), "card [launch]"],
        ["Launch mix", str(settings.get("mix") or "the experiment's mix"), "card [launch]"],
    ]
    for name, value in settings.get("assumptions", {}).items():
        asm_rows.append(
            [
                name.replace("_", " ").capitalize(),
                usd(value, 2),
                "card [value] (business assumption)",
            ]
        )
    for k, v in (run.get("overrides") or {}).items():
        asm_rows.append([f"Override {k}", str(v), "memo --set"])
    doc.add(Table(["Assumption", "Value", "Source"], asm_rows, align="lrl"))

    doc.add(Heading("B. Data checks and balance", level=3))
    bal = s.get("checks", {}).get("balance", [])
    if bal:
        doc.add(
            Table(
                ["Covariate", "Control mean", "Treatment mean", "SMD"],
                [
                    [
                        b["covariate"],
                        _num(b["mean_control"]),
                        _num(b["mean_treatment"]),
                        f"{b['smd']:+.3f}",
                    ]
                    for b in bal
                ],
                caption="Standardized mean difference (treatment − control) in pooled SDs.",
            )
        )

    doc.add(Heading("C. Model and sampler diagnostics", level=3))
    hier = s.get("hierarchy", {})
    inter = hier.get("interactions", [])
    doc.add(
        Paragraph(
            "Hierarchical model on per-cell effect estimates (cell statistics): each outcome's "
            "cell effect = overall mean + one partially pooled term per factor ("
            + ", ".join(hier.get("factors", []))
            + ")"
            + (f" + interactions ({'; '.join(' × '.join(i) for i in inter)})" if inter else "")
            + " + a heavy-tailed cell deviation; outcomes are fitted jointly with their sampling "
            "covariance. Priors: "
            + (", ".join(f"{k} {v}" for k, v in s.get("priors", {}).items()) or "package defaults")
            + "."
        )
    )
    diag = s.get("diagnostics", {})
    sampler = [c for c in checks if c.get("kind") == "sampler"]
    if sampler:
        doc.add(
            Table(
                ["Diagnostic", "Result", "Detail"],
                [[c["name"], _ok(c["passes"]), c["detail"]] for c in sampler],
                align="llr",
            )
        )
    elif diag:
        doc.add(Paragraph(", ".join(f"{k} = {_num(v)}" for k, v in diag.items())))

    risks = getattr(card, "risks", ())
    if risks:
        doc.add(Heading("D. Risk register", level=3))
        doc.add(
            Table(
                ["Risk", "Why it matters", "Mitigation"],
                [[r.risk, r.why_it_matters, r.mitigation] for r in risks],
                align="lll",
            )
        )
    if mon is not None and (mon.metrics or mon.stop_rules):
        doc.add(Heading("E. Monitoring plan", level=3))
        doc.add(
            Table(
                ["Item", "Plan"],
                [
                    ["Holdout", pct(mon.holdout_share) if mon.holdout_share else "none"],
                    ["Cadence", mon.cadence or "n/a"],
                    ["Metrics", "; ".join(mon.metrics)],
                    ["Stop rules", "; ".join(mon.stop_rules)],
                    ["Review", mon.review or "n/a"],
                ],
                align="ll",
            )
        )
    feats = getattr(card, "features", {})
    if feats:
        doc.add(Heading("F. Feature dictionary", level=3))
        doc.add(
            Table(
                ["Column", "Role", "Type", "Unit", "Meaning"],
                [[f"`{f.name}`", f.role, f.type, f.unit, f.description] for f in feats.values()],
                align="lllll",
            )
        )
    lin = s.get("lineage", {})
    if lin:
        doc.add(Heading("G. Lineage", level=3))
        doc.add(
            Table(
                ["Item", "Value"],
                [
                    [k.replace("_", " "), f"`{v}`" if isinstance(v, str) else str(v)]
                    for k, v in lin.items()
                    if not isinstance(v, dict | list)
                ],
                align="ll",
            )
        )
    return doc


def _num(x: Any) -> str:
    if x is None:
        return "n/a"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def write_memo(
    summary: Mapping[str, Any],
    folder: str | Path,
    card: Any = None,
    figures: Mapping[str, Path] | None = None,
) -> tuple[Path, Path]:
    """Write ``memo.md`` (figures linked from ``figures/``) and self-contained ``memo.html``.

    Returns the two paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = build_memo(summary, card, figures)
    md = folder / "memo.md"
    html_path = folder / "memo.html"
    md.write_text(to_markdown(doc), encoding="utf-8")
    html_path.write_text(render_html(doc), encoding="utf-8")
    return md, html_path


__all__ = ["build_memo", "effect_text", "pct", "usd", "write_memo"]
