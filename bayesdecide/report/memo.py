"""The decision memo, following the seed's structure, rendered from the typed run summary.

Sections: Decision, Estimand, Identification, Primary effect, Guardrails, Economics (with
sensitivity and break-even), Heterogeneity, Fairness across groups, Recommendation, Rollout
conditions, Appendix
(assumptions, data checks, model and diagnostics, risk register, monitoring plan, feature
dictionary, lineage). Each section is one small function of a :class:`MemoContext`.

A multi-arm run (k treatment arms against one control; ``summary.arms``) reads the same with every
effect per arm: the headline and the policy table say which arm each policy gives to how many
customers; Identification counts every arm; Primary effect and Guardrails report each arm against
the control; Economics adds **Which arm, for whom** (P(best) of none and each arm overall and per
level of every factor, with a figure); Heterogeneity has one row per level and arm; Fairness shows
each arm given to everyone; the appendix adds the best arm per cell.

:func:`build_memo` turns a :class:`~bayesdecide.run.summary.RunSummary` and the
:class:`~bayesdecide.card.ModelCard` (risk register, monitoring plan, feature dictionary) into a
:class:`~bayesdecide.report.document.Document`; :func:`write_memo` writes ``memo.md`` and a
self-contained ``memo.html``. Every number comes from the summary, so a memo can be re-rendered
without the fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import norm

from bayesdecide.decide.policies import (
    OPTIMAL,
    OPTIMAL_WITHOUT_GROUP_RULES,
    TREAT_ALL,
    TREAT_NONE,
)
from bayesdecide.decide.recommend import BLOCKED, NO_LAUNCH, RULE_TEXT
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

if TYPE_CHECKING:
    from bayesdecide.card import ModelCard
    from bayesdecide.run.summary import (
        GroupEffect,
        GroupRuleLevel,
        GuardrailResult,
        OutcomeInfo,
        RunSummary,
    )

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


def effect_text(x: float | None, outcome: OutcomeInfo, signed: bool = True) -> str:
    """An effect in the outcome's unit: dollars, percentage points (binary) or counts."""
    if x is None or not np.isfinite(x):
        return "n/a"
    sign = "+" if signed and x > 0 else ("-" if x < 0 else "")
    a = abs(x)
    if outcome.kind == "binary":
        return f"{sign}{100 * a:.2f} pp"
    if "dollar" in outcome.unit:
        return f"{sign}${a:,.2f}"
    if outcome.kind == "count":
        return f"{sign}{a:.3f}"
    return f"{sign}{a:.3g}"


def num(x: Any) -> str:
    """A number for a table: thousands separators when large, 3 significant digits when small."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a" if x is None else str(x)
    if not np.isfinite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _ok(b: bool) -> str:
    return "pass" if b else "**FAIL**"


# ---------------------------------------------------------------------------------------------
# context
# ---------------------------------------------------------------------------------------------


@dataclass
class MemoContext:
    """What every section reads: the summary, the card, the figures, and the document built."""

    s: RunSummary
    card: ModelCard | None
    figures: Mapping[str, Path]
    figure_prefix: str
    doc: Document = field(init=False)

    def __post_init__(self) -> None:
        info, run = self.s.card, self.s.run
        subtitle = (
            f"Card {info.name} v{info.version} · run {run.id} · {run.created} · "
            f"{run.chains} chains × {run.draws} draws"
        )
        if run.overrides:
            subtitle += " · re-rendered with " + ", ".join(
                f"{k}={v}" for k, v in run.overrides.items()
            )
        self.doc = Document(title=f"Decision memo: {info.title or info.name}", subtitle=subtitle)

    def add(self, *blocks: Any) -> None:
        self.doc.add(*blocks)

    def fig(self, name: str, caption: str) -> None:
        if name in self.figures and Path(self.figures[name]).exists():
            p = Path(self.figures[name])
            self.add(Figure(p, caption, rel=f"{self.figure_prefix}{p.name}"))

    def pname(self, p: str | None) -> str:
        return self.s.labels.get(p, p) if p else "n/a"

    def label(self, outcome: str) -> str:
        o = self.s.outcomes.get(outcome)
        return o.label if o is not None and o.label else outcome

    @property
    def primary(self) -> OutcomeInfo:
        return self.s.outcomes[self.s.primary_outcome]

    @property
    def ci(self) -> str:
        return f"{self.s.settings.ci_prob:.0%}"

    @property
    def focus(self) -> str | None:
        """The policy the memo's numbers are about: the recommendation, else the rule's choice."""
        rec = self.s.recommendation
        return rec.policy or rec.rule_policy

    def interval(self, lo: float, hi: float, outcome: OutcomeInfo) -> str:
        return f"{effect_text(lo, outcome)} to {effect_text(hi, outcome)}"


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------


def headline(m: MemoContext) -> None:
    rec = m.s.recommendation
    if rec.blocked:
        m.add(
            Callout(
                f"**{BLOCKED}.** " + " ".join(rec.reasons[:2]) + " The numbers below are "
                "provisional and must not be used for a launch decision.",
                "bad",
            )
        )
    elif rec.decision == NO_LAUNCH:
        m.add(Callout(f"**Recommendation: {NO_LAUNCH}.** " + rec.reasons[-1], "warn"))
    else:
        row = m.s.policies[rec.policy or ""]
        arms = f" ({_arm_shares_text(row.arm_shares)})" if m.s.arms is not None else ""
        m.add(
            Callout(
                f"**Recommendation: {rec.decision} — {m.pname(rec.policy)}{arms}.** Expected "
                f"launch value {usd(row.expected_value)} (80% interval {usd(row.p10)} to "
                f"{usd(row.p90)}); P(value > 0) = {pct(row.prob_positive)}; passes every "
                "pre-registered rule.",
                "good",
            )
        )
    if m.s.hierarchy.left_out:
        m.add(
            Callout(
                "**The estimates show structure the card's hierarchy leaves out** ("
                + "; ".join(m.s.hierarchy.left_out)
                + "): the effects of the levels it touches may be biased toward the additive "
                "pattern (Appendix C).",
                "warn",
            )
        )
    if rec.loosened_checks:
        m.add(
            Callout(
                "**This recommendation rests on loosened checks**: "
                + "; ".join(rec.loosened_checks)
                + " (thresholds changed with `memo --set` from the run's pre-registered ones).",
                "warn",
            )
        )


def _arm_shares_text(shares: Mapping[str, float]) -> str:
    """``email to 73% of customers, outreach to 5%`` (arms given to nobody left out)."""
    given = [(a, x) for a, x in shares.items() if x > 0]
    if not given:
        return "no offer to anyone"
    return ", ".join(
        f"{a} to {pct(x)}" + (" of customers" if i == 0 else "") for i, (a, x) in enumerate(given)
    )


def decision_section(m: MemoContext) -> None:
    info = m.s.card
    m.add(Heading("1. Decision"))
    m.add(
        Paragraph(
            info.decision
            or "Whether to launch the intervention to the eligible population, target it, or hold."
        )
    )
    if info.description:
        m.add(Paragraph(info.description))
    if info.owner:
        m.add(Paragraph(f"Decision owner: {info.owner}."))


def estimand(m: MemoContext) -> None:
    exp, st = m.s.experiment, m.s.settings
    m.add(Heading("2. Estimand"))
    m.add(
        Paragraph(
            (exp.estimand or "Intention-to-treat effect of assignment, per assigned unit").rstrip(
                "."
            )
            + f". Horizon: {exp.horizon or 'as measured'}. Population: "
            f"{exp.population or 'the experiment population'}."
        )
    )
    arms = m.s.arms
    versus = (
        ""
        if arms is None
        else f" Each treatment arm ({', '.join(arms.treatment_arms)}) is compared with the "
        f"shared control ({arms.control}); a policy gives every customer one arm or none, and "
        "its effect is that of the arm it gives, against the control."
    )
    m.add(
        Paragraph(
            "Effects are per assigned customer (intention to treat); money in dollars per customer "
            f"over the horizon. Launch values are in dollars for **{int(st.n_eligible):,}** "
            f"eligible customers after a **{usd(st.fixed_cost)}** fixed implementation cost."
            + versus
        )
    )


def identification(m: MemoContext) -> None:
    exp, data, arms = m.s.experiment, m.s.data, m.s.arms
    m.add(Heading("3. Identification"))
    if arms is None:
        split = (
            f"{data.n_treatment:,} treated and {data.n_control:,} control (designed treatment "
            f"share {exp.assignment_share:.0%})"
        )
    else:
        split = (
            ", ".join(f"{n:,} {a}" for a, n in data.arm_counts.items())
            + " (designed shares "
            + " / ".join(f"{a} {pct(x)}" for a, x in arms.shares.items())
            + ")"
        )
    m.add(
        Paragraph(
            f"{exp.randomization_unit.capitalize()}-level randomized experiment: "
            f"**{data.n_units:,}** units, {split}, in {data.n_cells} "
            f"cells of {' × '.join(m.s.hierarchy.factors)}. Random assignment identifies the "
            f"effects; covariate adjustment ({', '.join(exp.covariates) or 'none'}) only "
            "sharpens them."
        )
    )
    rows = [[c.name, _ok(c.passes), c.detail] for c in m.s.checks.results if c.kind == "data"]
    if rows:
        m.add(Table(["Check", "Result", "Detail"], rows, align="llr"))
    if data.single_arm_cells:
        what = "with only one arm" if arms is None else "without units in some arm"
        m.add(
            Paragraph(
                f"Cells {what} ({', '.join(data.single_arm_cells)}) contribute no effect estimate "
                "for the missing arm; those effects are predicted by the hierarchy and the cells "
                "keep their share of the launch population."
                if arms is not None
                else f"Cells {what} ({', '.join(data.single_arm_cells)}) contribute no "
                "effect estimate; their effects are predicted by the hierarchy and they keep their "
                "share of the launch population."
            )
        )


def primary_effect(m: MemoContext) -> None:
    s, po = m.s, m.primary
    m.add(Heading("4. Primary effect"))
    if s.arms is not None:
        _primary_effect_arms(m)
        return
    e = s.effects[s.primary_outcome]
    text = (
        f"Assignment changed **{m.label(s.primary_outcome).lower()}** by "
        f"**{effect_text(e.mean, po)}** per assigned customer (posterior mean; {m.ci} credible "
        f"interval {m.interval(e.lower, e.upper, po)}; P(effect > 0) = {pct(e.prob_positive)})."
    )
    if e.raw_estimate is not None and np.isfinite(e.raw_estimate):
        half = norm.ppf((1 + s.settings.ci_prob) / 2) * (e.raw_std_error or np.nan)
        text += (
            f" The unpooled covariate-adjusted estimate is {effect_text(e.raw_estimate, po)} "
            f"± {effect_text(half, po, signed=False)} ({m.ci})."
        )
    m.add(Paragraph(text))
    rows = []
    for name, e in s.effects.items():
        o = s.outcomes[name]
        rows.append(
            [
                m.label(name),
                o.role,
                effect_text(e.mean, o),
                m.interval(e.lower, e.upper, o),
                pct(e.prob_positive),
                effect_text(e.raw_estimate, o),
            ]
        )
    m.add(
        Table(
            ["Outcome", "Role", "Posterior mean", f"{m.ci} credible interval", "P(> 0)", "Raw"],
            rows,
            align="llrrrr",
            caption="All-customer effect per assigned customer (experiment mix). Binary "
            "outcomes in percentage points; Raw = unpooled covariate-adjusted estimate.",
        )
    )


def _primary_effect_arms(m: MemoContext) -> None:
    """Primary effect of every arm against the control, and the effects table per arm."""
    s, po, arms = m.s, m.primary, m.s.arms
    assert arms is not None
    label = m.label(s.primary_outcome).lower()
    z = norm.ppf((1 + s.settings.ci_prob) / 2)
    sentences = []
    for arm in arms.treatment_arms:
        e = arms.effects[arm][s.primary_outcome]
        text = (
            f"Assignment to **{arm}** changed **{label}** by **{effect_text(e.mean, po)}** per "
            f"assigned customer against {arms.control} (posterior mean; {m.ci} credible interval "
            f"{m.interval(e.lower, e.upper, po)}; P(effect > 0) = {pct(e.prob_positive)}"
        )
        if e.raw_estimate is not None and np.isfinite(e.raw_estimate):
            half = z * (e.raw_std_error or np.nan)
            text += (
                f"; unpooled estimate {effect_text(e.raw_estimate, po)} "
                f"± {effect_text(half, po, signed=False)}"
            )
        sentences.append(text + ").")
    m.add(Paragraph(" ".join(sentences)))
    rows = []
    for name, o in s.outcomes.items():
        row = [m.label(name), o.role]
        for arm in arms.treatment_arms:
            e = arms.effects[arm].get(name)
            row.append(
                "n/a"
                if e is None
                else f"{effect_text(e.mean, o)} ({m.interval(e.lower, e.upper, o)})"
            )
        rows.append(row)
    m.add(
        Table(
            ["Outcome", "Role", *[f"{a} ({m.ci} CrI)" for a in arms.treatment_arms]],
            rows,
            align="ll" + "r" * len(arms.treatment_arms),
            caption=f"All-customer effect of each arm against {arms.control}, per assigned "
            "customer (experiment mix), as if everyone got that arm. Binary outcomes in "
            "percentage points.",
        )
    )


def guardrails(m: MemoContext) -> None:
    s = m.s
    m.add(Heading("5. Guardrails"))
    if s.arms is None:
        effects = {"": s.effects}
    else:
        effects = {f"{a} to everyone": s.arms.effects[a] for a in s.arms.treatment_arms}
    for who, eff in effects.items():
        parts = [
            f"{m.label(n).lower()} changed by {effect_text(eff[n].mean, o)} ({m.ci} CrI "
            f"{m.interval(eff[n].lower, eff[n].upper, o)})"
            for n, o in s.outcomes.items()
            if o.role == "guardrail" and n in eff
        ]
        if parts:
            head = "Treating everyone" if not who else who.capitalize()
            m.add(Paragraph(f"{head}: " + "; ".join(parts) + "."))
    guard = [g for g in s.guardrails if g.policy != TREAT_NONE]  # the status quo is not held
    if guard:
        rules = list(dict.fromkeys(g.rule for g in guard))
        descr = {g.rule: g.description or g.rule for g in guard}
        m.add(
            Paragraph(
                "Pre-registered rules (fixed before the results were seen), evaluated as posterior "
                "probabilities for every policy:"
            )
        )
        m.add(Bullets([f"**{r}**: {descr[r]}" for r in rules]))
        lookup = {(g.rule, g.policy): g for g in guard}
        rows = []
        for p in dict.fromkeys(g.policy for g in guard):
            row = [m.pname(p)]
            for r in rules:
                g = lookup.get((r, p))
                row.append("" if g is None else _rule_cell(g))
            rows.append(row)
        need = {
            g.rule: f"{g.rule} ({'≤' if g.comparison == '<=' else '≥'} {pct(g.threshold)})"
            for g in guard
        }
        m.add(
            Table(
                ["Policy", *[need[r] for r in rules]],
                rows,
                align="l" + "r" * len(rules),
                caption="Posterior probability per rule and policy; the header gives what the "
                "rule needs (for a loss rule, the probability of the loss, which must stay at or "
                "below the limit). A group rule must hold in every level of its factor: its "
                "probability is the worst level's, named in brackets (section 8 has every level). "
                "Treating nobody is the status quo and is not held to the rules.",
            )
        )
    m.fig("guardrails", "Rule × policy: posterior probability and pass/fail.")


def _rule_cell(g: GuardrailResult) -> str:
    """``12% **FAIL**``, with the worst level of a group rule: ``12% **FAIL** (EMEA)``."""
    text = f"{pct(g.probability)} {_ok(g.passes)}"
    return text + (f" ({g.worst_level})" if g.worst_level else "")


def _value_formula(m: MemoContext) -> str:
    st = m.s.settings
    terms = " ".join(
        f"{'+' if w >= 0 and i else ('-' if w < 0 else '')} "
        f"{'' if abs(w) == 1 else f'{abs(w):g} × '}{m.label(o).lower()}"
        for i, (o, w) in enumerate(st.weights.items())
    ).strip()
    scaled = (
        f" (scaled by the treated share, at least {st.min_cost_share:.0%})"
        if st.fixed_cost_scaling == "treated_share"
        else ""
    )
    benefits = ", ".join(m.label(o).lower() for o in st.transport_outcomes) or "the benefits"
    return (
        f"Value per treated customer = {terms} (dollars). Launch value = "
        f"{int(st.n_eligible):,} eligible × mix-weighted value of the treated cells − fixed cost "
        f"{usd(st.fixed_cost)}{scaled}; transport multiplier {st.transport_multiplier:g} on "
        f"{benefits}."
    )


def economics(m: MemoContext) -> None:
    s = m.s
    m.add(Heading("6. Economics"))
    m.add(Paragraph(_value_formula(m)))
    order = sorted(s.policies, key=lambda p: -s.policies[p].expected_value)
    multi = s.arms is not None
    m.add(
        Table(
            [
                "Policy",
                "Arms" if multi else "Treated share",
                "Expected value",
                "P(value > 0)",
                f"P(loss > {usd(s.settings.loss_threshold)})",
                "P10",
                "Median",
                "P90",
                "P(best)",
            ],
            [
                [
                    f"**{m.pname(p)}**" if p == m.focus else m.pname(p),
                    _arm_shares_text(r.arm_shares) if multi else pct(r.treated_share),
                    usd(r.expected_value),
                    pct(r.prob_positive),
                    pct(r.prob_large_loss),
                    usd(r.p10),
                    usd(r.p50),
                    usd(r.p90),
                    pct(r.prob_best),
                ]
                for p, r in ((p, s.policies[p]) for p in order)
            ],
            caption="Launch value in dollars, posterior over the pooled cell effects."
            + (
                " Arms: the share of eligible customers each policy gives each arm."
                if multi
                else ""
            ),
        )
    )
    if s.optimal is not None and OPTIMAL in s.policies:
        m.add(
            Paragraph(
                f"*{m.pname(OPTIMAL)}* is the Bayes-optimal targeting under the pre-registered "
                f"rules: it {s.optimal.description}"
            )
        )
    m.fig("policy_values", "Expected launch value per policy with 10th-90th percentile.")
    m.fig(
        "value_posterior",
        f"Posterior of launch value for {m.pname(m.focus) if m.focus else 'the leading policy'} "
        "(dollars).",
    )
    which_arm(m)
    break_even(m)
    m.fig("sensitivity", "Launch value as each assumption varies; break-even marked.")


def which_arm(m: MemoContext) -> None:
    """Multi-arm runs: P(best) of none and each arm, overall and per level of every factor."""
    arms = m.s.arms
    if arms is None:
        return
    choices = ["none", *arms.treatment_arms]
    m.add(Heading("Which arm, for whom", level=3))
    m.add(
        Paragraph(
            "For each group, the choice (no offer, or one arm) with the highest net value, and "
            "the posterior probability that each choice is the best one, P(best): the share of "
            "posterior draws in which it has the highest value (the choices' probabilities sum to "
            "100%; a tie goes to no offer). Overall: each arm given to everyone, at launch scale "
            "after the fixed cost. Per group: the arm given to everyone in the group, net value "
            "per customer (no fixed cost)."
        )
    )
    overall = {c.choice: c for c in arms.overall}
    m.add(
        Table(
            ["Everyone gets", "Expected launch value", f"{m.ci} interval", "P(best)"],
            [
                [
                    f"**{c}**" if overall[c].best else c,
                    usd(overall[c].mean),
                    f"{usd(overall[c].lower)} to {usd(overall[c].upper)}",
                    pct(overall[c].prob_best),
                ]
                for c in choices
                if c in overall
            ],
            align="lrrr",
            caption="One arm for everyone, or nobody: launch value and P(best) among these "
            "choices (bold: highest expected value). Targeting can do better; see the policy "
            "table.",
        )
    )
    for factor, rows in arms.by_level.items():
        title = factor.replace("_", " ")
        get = {(r.unit, r.choice): r for r in rows}
        levels = list(dict.fromkeys(r.unit for r in rows))
        body = []
        for lv in levels:
            best = next(r.choice for r in rows if r.unit == lv and r.best)
            body.append(
                [
                    lv,
                    pct(get[(lv, choices[0])].share),
                    *[
                        f"{usd(get[(lv, c)].mean, 2)} ({pct(get[(lv, c)].prob_best)})"
                        for c in choices
                    ],
                    f"**{best}**",
                ]
            )
        m.add(
            Table(
                [
                    title.capitalize(),
                    "Share",
                    *[f"{c}: value (P(best))" for c in choices],
                    "Best",
                ],
                body,
                align="lr" + "r" * len(choices) + "l",
                caption=f"Net value per customer of each {title} if everyone in it gets the "
                "choice (posterior mean, dollars) and P(best).",
            )
        )
    m.fig("best_arm", "P(best) of no offer and each arm, by group and overall.")


def _break_even_sentence(m: MemoContext, name: str) -> str | None:
    b = m.s.break_even[name]
    if not np.isfinite(b.median):
        return None
    who = m.pname(b.policy)
    if name == "transport_multiplier":
        return (
            f"If the launch keeps less than **{b.median:.2f}** of the experiment's benefit "
            f"(transport multiplier), {who} loses money."
        )
    if name not in m.s.settings.assumptions:
        return None
    what = f"the {name.replace('_', ' ')}"
    if b.direction == "below":
        return (
            f"If {what} is more than **{usd(b.median)}** (assumed {usd(b.current)}), {who} "
            "loses money."
        )
    return f"Break-even {name.replace('_', ' ')}: {usd(b.median)} (assumed {usd(b.current)})."


def break_even(m: MemoContext) -> None:
    be = m.s.break_even
    if not be:
        return
    m.add(Heading("Sensitivity and break-even", level=3))
    need = {"above": "above break-even", "below": "below break-even"}
    m.add(
        Table(
            [
                "Assumption",
                "Policy",
                "Assumed",
                "Break-even (median)",
                f"{m.ci} interval",
                "Value is positive when the assumption is",
            ],
            [
                [
                    name.replace("_", " "),
                    m.pname(b.policy),
                    num(b.current),
                    num(b.median),
                    f"{num(b.lower)} to {num(b.upper)}",
                    need.get(b.direction, ""),
                ]
                for name, b in be.items()
            ],
            align="llrrrl",
            caption="Break-even: the assumption's value at which launch value is zero, per "
            "posterior draw (median and interval of those draws).",
        )
    )
    for name in be:
        sentence = _break_even_sentence(m, name)
        if sentence:
            m.add(Paragraph(sentence))


def heterogeneity(m: MemoContext) -> None:
    s, po = m.s, m.primary
    m.add(Heading("7. Heterogeneity"))
    m.add(
        Paragraph(
            f"Effects on {m.label(s.primary_outcome).lower()} by pre-treatment group, from the "
            "hierarchical model: each group's estimate borrows strength from the others (partial "
            "pooling), so small groups are pulled toward the overall effect instead of being read "
            "at face value."
        )
    )
    multi = s.arms is not None
    for factor, levels in s.heterogeneity.items():
        m.add(Heading(f"By {factor.replace('_', ' ')}", level=3))
        m.add(
            Table(
                [
                    factor.replace("_", " ").capitalize(),
                    *(["Arm"] if multi else []),
                    "Customers",
                    "Pooled mean",
                    f"{m.ci} interval",
                    "P(> 0)",
                    "Raw",
                ],
                [
                    [
                        lv.level,
                        *([lv.arm or ""] if multi else []),
                        f"{int(lv.n):,}",
                        effect_text(lv.mean, po),
                        m.interval(lv.lower, lv.upper, po),
                        pct(lv.prob_positive),
                        effect_text(lv.raw, po),
                    ]
                    for lv in levels
                ],
            )
        )
    if not multi:
        m.fig("effects_by_factor", "Raw (grey) and pooled (blue) effects per group.")
        m.fig("shrinkage", "Per-cell raw estimates and pooled posteriors: partial pooling at work.")
    else:
        assert s.arms is not None
        for arm in s.arms.treatment_arms:
            m.fig(
                f"effects_by_factor_{arm}",
                f"{arm} against {s.arms.control}: raw (grey) and pooled (blue) effects per group.",
            )
            m.fig(
                f"shrinkage_{arm}",
                f"{arm} against {s.arms.control}: per-cell raw estimates and pooled posteriors.",
            )
    comparison(m)


def comparison(m: MemoContext) -> None:
    comp = m.s.comparison
    if comp is None:
        return
    f = comp.factor
    m.add(Heading(f"Comparing {f.replace('_', ' ')}s", level=3))
    if comp.arm is not None:
        m.add(
            Paragraph(
                f"Net value per customer if everyone in the {f.replace('_', ' ')} gets "
                f"**{comp.arm}** (the arm whose treat-all policy has the highest expected value)."
            )
        )
    m.add(
        Table(
            [f.capitalize(), "Net value per customer", f"{m.ci} interval", "P(> 0)", "P(best)"],
            [
                [
                    r.level,
                    usd(r.mean, 2),
                    f"{usd(r.lower, 2)} to {usd(r.upper, 2)}",
                    pct(r.prob_positive),
                    pct(r.prob_best),
                ]
                for r in comp.levels
            ],
        )
    )
    m.fig("region_comparison", f"P(row {f}'s effect > column {f}'s effect).")


def _quantity(m: MemoContext, outcome: str | None) -> tuple[str, Callable[[float | None], str]]:
    """Column name and number format of a per-customer quantity: net value or an outcome."""
    if outcome is None:
        return "Net value per customer", lambda x: usd(x, 2)
    info = m.s.outcomes[outcome]
    return m.label(outcome), lambda x: effect_text(x, info)


def _estimate(fmt: Callable[[float | None], str], e: GroupEffect) -> str:
    return f"{fmt(e.mean)} ({fmt(e.lower)} to {fmt(e.upper)})"


def fairness(m: MemoContext) -> None:
    s = m.s
    fair = s.fairness
    m.add(Heading("8. Fairness across groups"))
    if not fair.factors:
        m.add(
            Paragraph("No fairness factors are listed in the card ([decision].fairness_factors).")
        )
        return
    treating = [p for p in s.policies if p != TREAT_NONE]
    focus = m.focus if m.focus in s.policies else None
    names = " and ".join(f.replace("_", " ") for f in fair.factors)
    m.add(
        Paragraph(
            f"Does a policy favour or penalise some groups? By {names}: the **effect of a policy "
            "in a group** is its average effect per eligible customer of the group at launch, "
            "untreated customers counting 0, so a policy that leaves a group out keeps it at the "
            "status quo; under *Treat all* it is the group's effect if everyone in it is treated"
            + (" with that arm" if s.arms is not None else "")
            + ". "
            "The **treated share** is the share of the group's eligible customers a policy "
            f"treats. Posterior means with {m.ci} credible intervals; net value in dollars per "
            "customer over the horizon, other outcomes per assigned customer in their unit."
        )
    )
    for factor in fair.factors:
        title = factor.replace("_", " ")
        rows = [e for e in fair.effects if e.factor == factor]
        levels = list(dict.fromkeys(e.level for e in rows))
        outcomes = list(dict.fromkeys(e.outcome for e in rows))
        get = {(e.level, e.policy, e.outcome): e for e in rows}
        m.add(Heading(f"By {title}", level=3))
        value_name, value_fmt = _quantity(m, None)
        alls = (
            {"treated": TREAT_ALL}
            if s.arms is None
            else {f"get {a}": p for a, p in s.arms.all_policies.items()}
        )
        header = [title.capitalize(), "Share of launch"]
        for what in alls:
            header += [f"{value_name} if all {what}", "P(> 0)"]
        header += [f"{m.pname(p)}: treated" for p in treating if p not in alls.values()]
        body = []
        for lv in levels:
            share = next((e.share for e in rows if e.level == lv), None)
            row = [lv, pct(share) if share is not None else "n/a"]
            for p_all in alls.values():
                e_all = get.get((lv, p_all, None))
                row += [
                    _estimate(value_fmt, e_all) if e_all else "n/a",
                    pct(e_all.prob_positive) if e_all else "n/a",
                ]
            row += [
                pct(get[(lv, p, None)].treated_share) if (lv, p, None) in get else "n/a"
                for p in treating
                if p not in alls.values()
            ]
            body.append(row)
        m.add(
            Table(
                header,
                body,
                caption=(
                    f"Net value per customer of each {title} if everyone in it is treated "
                    f"(Treat all; {m.ci} interval), and the share of its eligible customers each "
                    "policy treats."
                    if s.arms is None
                    else f"Net value per customer of each {title} if everyone in it gets each arm "
                    f"({m.ci} interval), and the share of its eligible customers each policy "
                    "treats (with any arm)."
                ),
            )
        )
        if focus is not None:
            cols = [_quantity(m, o) for o in outcomes]
            m.add(
                Table(
                    [
                        title.capitalize(),
                        "Treated share",
                        *[f"{n} ({m.ci} interval)" for n, _ in cols],
                    ],
                    [
                        [
                            lv,
                            pct(get[(lv, focus, None)].treated_share),
                            *[
                                _estimate(fmt, get[(lv, focus, o)])
                                if (lv, focus, o) in get
                                else "n/a"
                                for o, (_, fmt) in zip(outcomes, cols, strict=True)
                            ],
                        ]
                        for lv in levels
                        if (lv, focus, None) in get
                    ],
                    caption=f"Under {m.pname(focus)}: effect per eligible customer of each "
                    f"{title} (untreated customers count 0).",
                )
            )
    left_out_groups(m)
    group_rules(m)


def left_out_groups(m: MemoContext) -> None:
    fair = m.s.fairness
    m.add(Heading("Groups left out", level=3))
    if not fair.left_out:
        m.add(Paragraph("Every policy treats some customers in every group."))
        return
    m.add(
        Bullets(
            [
                f"**{m.pname(g.policy)}** leaves out {g.factor.replace('_', ' ')} **{g.level}** "
                f"({pct(g.share)} of customers): {g.reason}."
                for g in fair.left_out
            ]
        )
    )


def group_rules(m: MemoContext) -> None:
    s = m.s
    if not s.group_rules:
        return
    m.add(Heading("Group rules", level=3))
    policies = [p for p in s.policies if p != TREAT_NONE]
    for rule in dict.fromkeys(g.rule for g in s.group_rules):
        rows = [g for g in s.group_rules if g.rule == rule]
        head = next(g for g in s.guardrails if g.rule == rule)
        factor = rows[0].factor.replace("_", " ")
        definition = head.definition[:1].upper() + head.definition[1:]
        text = f"**{rule}**: {head.description.rstrip('.')}."
        if head.description != head.definition:
            text += f" Estimand and event: {definition}."
        m.add(Paragraph(text))
        levels = list(dict.fromkeys(g.level for g in rows))
        get = {(g.level, g.policy): g for g in rows}

        m.add(
            Table(
                [factor.capitalize(), *[m.pname(p) for p in policies]],
                [[lv, *[_level_cell(get.get((lv, p))) for p in policies]] for lv in levels],
                caption=f"Posterior probability of the rule's event in each {factor} "
                f"({'≤' if head.comparison == '<=' else '≥'} {pct(head.threshold)} needed in "
                f"every {factor}); (worst) marks the level that decides the rule for the "
                "policy. A level is not held when it has no customers, or, for a rule per "
                "treated customer, when the policy treats nobody in it.",
            )
        )
    free = s.policies.get(OPTIMAL_WITHOUT_GROUP_RULES)
    if free is not None and OPTIMAL in s.policies:
        opt = s.policies[OPTIMAL]
        fails = [
            _failure_text(g)
            for g in s.guardrails
            if g.policy == OPTIMAL_WITHOUT_GROUP_RULES and not g.passes
        ]
        m.add(
            Paragraph(
                f"**The group rules change the optimal targeting.** Without them it would treat "
                f"{pct(free.treated_share)} of customers for an expected launch value of "
                f"{usd(free.expected_value)}, against {usd(opt.expected_value)} with them: the "
                f"rules cost {usd(free.expected_value - opt.expected_value)} in expectation. "
                "That policy fails " + "; ".join(fails or ["a rule"]) + "."
            )
        )
    elif OPTIMAL in s.policies:
        m.add(
            Paragraph(
                "The group rules do not change the optimal targeting: the best policy under the "
                "rules on totals passes them as it stands."
            )
        )


def _level_cell(g: GroupRuleLevel | None) -> str:
    """``4% **FAIL** (worst)``; ``not held`` for a level the rule does not apply to."""
    if g is None:
        return ""
    if not g.held:
        return "not held"
    return f"{pct(g.probability)} {_ok(g.passes)}" + (" (worst)" if g.worst else "")


def _failure_text(g: GuardrailResult) -> str:
    where = f"{g.factor.replace('_', ' ')} {g.worst_level}: " if g.factor and g.worst_level else ""
    need = "≤" if g.comparison == "<=" else "≥"
    return f"**{g.rule}** ({where}P = {pct(g.probability)}, needs {need} {pct(g.threshold)})"


def recommendation(m: MemoContext) -> None:
    s, rec = m.s, m.s.recommendation
    m.add(Heading("9. Recommendation"))
    word = rec.decision + (f": {m.pname(rec.policy)}" if rec.policy else "")
    m.add(Callout(f"**{word}.**", "bad" if rec.blocked else ("good" if rec.launch else "warn")))
    m.add(Bullets(list(rec.reasons)))
    if rec.blocked and rec.rule_policy in s.policies:
        rp = s.policies[rec.rule_policy]
        m.add(
            Paragraph(
                "Once the checks pass, the rule below would pick "
                f"**{m.pname(rec.rule_policy)}** on the current (provisional) numbers: expected "
                f"launch value {usd(rp.expected_value)}, P(value > 0) = {pct(rp.prob_positive)}."
            )
        )
    m.add(Paragraph(f"Decision rule (pre-registered): {RULE_TEXT}"))
    voi = s.value_of_information
    if voi is not None:
        m.add(
            Paragraph(
                "Value of information (dollars at launch scale; an upper bound on what more "
                f"evidence could be worth): evpi policies: {usd(voi.evpi_policies)}; evpi "
                f"targeting: {usd(voi.evpi_targeting)}."
            )
        )


def rollout(m: MemoContext) -> None:
    m.add(Heading("10. Rollout conditions"))
    mon = m.card.monitoring if m.card is not None else None
    items = []
    if mon is not None and mon.holdout_share:
        items.append(f"Keep a randomized holdout of {mon.holdout_share:.0%} of eligible customers.")
    if mon is not None and mon.cadence:
        items.append(f"Review guardrails {mon.cadence}: " + "; ".join(mon.metrics) + ".")
    if mon is not None:
        items += [f"Stop rule: {r}." for r in mon.stop_rules]
    tm = m.s.break_even.get("transport_multiplier")
    if tm is not None and np.isfinite(tm.median):
        items.append(
            f"Revisit the decision if the rollout keeps less than {tm.median:.2f} of the "
            "experiment's benefit (break-even transport multiplier)."
        )
    if mon is not None and mon.review:
        items.append(mon.review)
    m.add(Bullets(items or ["Keep a holdout and monitor the guardrail outcomes weekly."]))


def assumptions(m: MemoContext) -> None:
    st, run = m.s.settings, m.s.run
    m.add(Heading("Appendix"))
    m.add(Heading("A. Assumptions", level=3))
    rows = [
        ["Eligible customers at launch", f"{int(st.n_eligible):,}", "card [launch]"],
        ["Fixed implementation cost", usd(st.fixed_cost), "card [launch]"],
        ["Fixed-cost rule", st.fixed_cost_scaling, "card [launch]"],
        ["Transport multiplier", num(st.transport_multiplier), "card [launch]"],
        ["Large-loss threshold", usd(st.loss_threshold), "card [launch]"],
        ["Launch mix", str(st.mix or "the experiment's mix"), "card [launch]"],
    ]
    for name, a in st.assumptions.items():
        rows.append(
            [
                name.replace("_", " ").capitalize(),
                usd(a.dollars, 2),
                "card [value] (business assumption)",
            ]
        )
    rows += [[f"Override {k}", str(v), "memo --set"] for k, v in run.overrides.items()]
    m.add(Table(["Assumption", "Value", "Source"], rows, align="lrl"))


def balance(m: MemoContext) -> None:
    m.add(Heading("B. Data checks and balance", level=3))
    if m.s.arms is not None:
        rows = [
            [b.covariate, b.arm or "", num(b.mean_control), num(b.mean_treatment), f"{b.smd:+.3f}"]
            for b in m.s.checks.balance
        ]
        if rows:
            m.add(
                Table(
                    ["Covariate", "Arm", "Control mean", "Arm mean", "SMD"],
                    rows,
                    caption="Standardized mean difference (arm − control) in pooled SDs.",
                )
            )
        return
    rows = [
        [b.covariate, num(b.mean_control), num(b.mean_treatment), f"{b.smd:+.3f}"]
        for b in m.s.checks.balance
    ]
    if rows:
        m.add(
            Table(
                ["Covariate", "Control mean", "Treatment mean", "SMD"],
                rows,
                caption="Standardized mean difference (treatment − control) in pooled SDs.",
            )
        )


def model_and_diagnostics(m: MemoContext) -> None:
    s = m.s
    m.add(Heading("C. Model and sampler diagnostics", level=3))
    inter = s.hierarchy.interactions
    m.add(
        Paragraph(
            "Hierarchical model on per-cell effect estimates (cell statistics): each outcome's "
            "cell effect = overall mean + one partially pooled term per factor ("
            + ", ".join(s.hierarchy.factors)
            + ")"
            + (f" + interactions ({'; '.join(' × '.join(i) for i in inter)})" if inter else "")
            + (
                " (Student-t level effects: an outlying level is pooled less)"
                if any(k.startswith("level_nu") for k in s.priors)
                else ""
            )
            + (
                " + a Student-t cell deviation"
                if any(k.startswith("cell_nu") for k in s.priors)
                else " + a normal cell deviation"
            )
            + "; outcomes are fitted jointly with their sampling covariance"
            + (
                "; each treatment arm's effects have their own hierarchy, and the arms' effects "
                "in a cell are fitted jointly with the covariance their shared control induces"
                if s.arms is not None
                else ""
            )
            + ". "
            + (
                "Pooled as relative lifts (each cell's effect divided by its smoothed control-arm "
                f"mean): {', '.join(m.label(o).lower() for o in s.hierarchy.relative)}; the "
                "other outcomes pool relative to each cell's smoothed unit-level standard "
                "deviation"
                if s.hierarchy.relative
                else "Every outcome pools relative to each cell's smoothed unit-level standard "
                "deviation"
            )
            + ". Priors, in each outcome's natural units (its own unit at a typical cell): "
            + ("below" if s.priors else "package defaults")
            + "."
        )
    )
    if s.hierarchy.left_out:
        m.add(
            Callout(
                "**Checked before sampling: the estimates show structure this hierarchy leaves "
                "out**: "
                + "; ".join(s.hierarchy.left_out)
                + ". A grouping column left out of the factors is pooled away; the cells of an "
                "interaction left out share one cell spread with every other cell, so they are "
                "pulled toward the additive pattern and the levels' effects are biased (on a "
                "process with such an interaction, 1.7-2.0 posterior sds for the level most "
                "affected: docs/model.md). Add it to the card (`hierarchy.factors` or "
                "`hierarchy.interactions`) and run again.",
                "warn",
            )
        )
    if s.priors:
        rows = [[*_prior_key(k), v] for k, v in s.priors.items()]
        m.add(Table(["Prior", "Outcome", "Distribution"], rows, align="lll"))
    rows = [[c.name, _ok(c.passes), c.detail] for c in s.checks.results if c.kind == "sampler"]
    if rows:
        m.add(Table(["Diagnostic", "Result", "Detail"], rows, align="llr"))
    elif s.diagnostics:
        m.add(Paragraph(", ".join(f"{k} = {num(v)}" for k, v in s.diagnostics.items())))
    cross_validation(m)


def _prior_key(key: str) -> list[str]:
    """``"sigma_region[net_margin]"`` -> ``["sigma_region", "net_margin"]`` (no outcome: "all")."""
    name, _, rest = key.partition("[")
    return [name, rest.rstrip("]") or "all"]


def cross_validation(m: MemoContext) -> None:
    """Each held-out level's own estimate against its prediction from the other levels; a
    warning naming the levels whose PIT falls outside [0.025, 0.975]."""
    held = m.s.cross_validation
    if not held:
        return
    factors = list(dict.fromkeys(h.factor for h in held))
    prob = held[0].prob
    m.add(
        Paragraph(
            f"**Cross-validation by {', '.join(factors)}.** Each level was held out in turn, the "
            "model refitted on the other levels' cells, and the level predicted as a new one. "
            f"Shown: the level's own estimate (its cells, unpooled), the {pct(prob)} predictive "
            "interval for it and the PIT (the predictive probability of a value at or below the "
            "estimate)."
        )
    )
    rows = []
    for h in held:
        o = m.s.outcomes[h.outcome]
        rows.append(
            [
                f"{h.factor} = {h.level}",
                m.label(h.outcome),
                effect_text(h.estimate, o),
                m.interval(h.lower, h.upper, o),
                _ok(h.covered),
                f"{h.pit:.3f}",
            ]
        )
    m.add(Table(["Held out", "Outcome", "Estimate", "Predicted", "Covered", "PIT"], rows, "llrrlr"))
    bad = [h for h in held if h.surprising]
    if bad:
        names = "; ".join(
            f"{h.factor} = {h.level} ({m.label(h.outcome)}, PIT {h.pit:.3f})" for h in bad
        )
        m.add(
            Callout(
                f"**Warning: the hierarchy would have mispredicted {names}.** Its estimate falls "
                "outside the central 95% of what the other levels predict (PIT outside "
                "[0.025, 0.975]): that level behaves unlike the others, so pooling pulls it toward "
                "them. Check it before relying on its pooled effect, or fit it on its own.",
                "warn",
            )
        )


def card_appendix(m: MemoContext) -> None:
    """Risk register, monitoring plan and feature dictionary (from the card)."""
    card = m.card
    if card is None:
        return
    if card.risks:
        m.add(Heading("D. Risk register", level=3))
        m.add(
            Table(
                ["Risk", "Why it matters", "Mitigation"],
                [[r.risk, r.why_it_matters, r.mitigation] for r in card.risks],
                align="lll",
            )
        )
    mon = card.monitoring
    if mon.metrics or mon.stop_rules:
        m.add(Heading("E. Monitoring plan", level=3))
        m.add(
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
    if card.features:
        m.add(Heading("F. Feature dictionary", level=3))
        m.add(
            Table(
                ["Column", "Role", "Type", "Unit", "Meaning"],
                [
                    [f"`{c}`", f.role, f.type, f.unit, f.description]
                    for c, f in card.features.items()
                ],
                align="lllll",
            )
        )


def best_arm_cells(m: MemoContext) -> None:
    """Multi-arm runs: the choice per cell, its P(best) and the optimal targeting's choice."""
    arms = m.s.arms
    if arms is None or not arms.by_cell:
        return
    choices = ["none", *arms.treatment_arms]
    get = {(r.unit, r.choice): r for r in arms.by_cell}
    cells = list(dict.fromkeys(r.unit for r in arms.by_cell))
    m.add(Heading("H. Best arm per cell", level=3))
    body = []
    for c in cells:
        rows = [get[(c, ch)] for ch in choices]
        optimal = next((r.choice for r in rows if r.optimal), "n/a")
        body.append(
            [
                c,
                pct(rows[0].share),
                *[f"{usd(r.mean, 2)} ({pct(r.prob_best)})" for r in rows],
                next(r.choice for r in rows if r.best),
                optimal,
            ]
        )
    m.add(
        Table(
            ["Cell", "Share", *[f"{ch}: value (P(best))" for ch in choices], "Best", "Optimal"],
            body,
            align="lr" + "r" * len(choices) + "ll",
            caption="Net value per customer of each choice in each cell (posterior mean, dollars) "
            "and P(best); Best: highest posterior mean; Optimal: the choice of the optimal "
            "targeting under the rules.",
        )
    )


def lineage(m: MemoContext) -> None:
    lin = {k: v for k, v in vars(m.s.lineage).items() if v is not None}
    m.add(Heading("G. Lineage", level=3))
    m.add(
        Table(
            ["Item", "Value"],
            [
                [k.replace("_", " "), f"`{v}`" if isinstance(v, str) else str(v)]
                for k, v in lin.items()
            ],
            align="ll",
        )
    )


SECTIONS: tuple[Callable[[MemoContext], None], ...] = (
    headline,
    decision_section,
    estimand,
    identification,
    primary_effect,
    guardrails,
    economics,
    heterogeneity,
    fairness,
    recommendation,
    rollout,
    assumptions,
    balance,
    model_and_diagnostics,
    card_appendix,
    lineage,
    best_arm_cells,
)


def build_memo(
    summary: RunSummary,
    card: ModelCard | None = None,
    figures: Mapping[str, Path] | None = None,
    *,
    figure_prefix: str = "figures/",
) -> Document:
    """The memo as a :class:`Document`.

    Parameters
    ----------
    summary:
        The typed run summary.
    card:
        The :class:`~bayesdecide.card.ModelCard` (risk register, monitoring plan, feature
        dictionary); optional.
    figures:
        Figure name -> PNG path. Known names: ``value_posterior``, ``policy_values``,
        ``guardrails``, ``sensitivity``, ``effects_by_factor``, ``shrinkage``,
        ``region_comparison``; multi-arm runs: ``best_arm`` and ``effects_by_factor_<arm>``,
        ``shrinkage_<arm>`` instead of the two effect figures.
    figure_prefix:
        Folder of the figures relative to the memo (for Markdown links).
    """
    m = MemoContext(summary, card, dict(figures or {}), figure_prefix)
    for section in SECTIONS:
        section(m)
    return m.doc


def write_memo(
    summary: RunSummary,
    folder: str | Path,
    card: ModelCard | None = None,
    figures: Mapping[str, Path] | None = None,
) -> tuple[Path, Path]:
    """Write ``memo.md`` (figures linked from ``figures/``) and self-contained ``memo.html``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = build_memo(summary, card, figures)
    md, html_path = folder / "memo.md", folder / "memo.html"
    md.write_text(to_markdown(doc), encoding="utf-8")
    html_path.write_text(render_html(doc), encoding="utf-8")
    return md, html_path


__all__ = ["MemoContext", "build_memo", "effect_text", "num", "pct", "usd", "write_memo"]
