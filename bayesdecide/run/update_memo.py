"""The memo of a post-launch update: the earlier run and the update side by side, then the
updated decision's full memo.

The update section comes first: the rollout read, the posterior transport multiplier against
the assumed one (with its estimand and a figure), the decision before and after (policy by
policy, dollars at launch scale), and the stop rules evaluated on the rollout. The rest is the
standard memo (:func:`bayesdecide.report.memo.build_memo`) of the decision re-made with the
multiplier.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from bayesdecide.report.memo import build_memo, num, pct, usd

if TYPE_CHECKING:
    from bayesdecide.card import ModelCard
    from bayesdecide.decide import Decision
    from bayesdecide.run.folders import Stage
    from bayesdecide.run.render import Steps
    from bayesdecide.run.summary import RunSummary
    from bayesdecide.run.transport import TransportedView
    from bayesdecide.run.updating import UpdateSummary


def transport_figure(view: TransportedView, info: UpdateSummary, path: Path) -> Path:
    """Histogram of the transport multiplier's draws with the assumed value, the run's
    break-even and the central interval marked; saved as PNG at ``path``."""
    import matplotlib.pyplot as plt

    from bayesdecide.report.plots import save

    x = np.asarray(view.transport.multiplier.values, dtype=float).ravel()
    s = info.transport["summary"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(x, bins=50, color="#6baed6", edgecolor="white")
    ax.axvspan(
        s["lower"],
        s["upper"],
        color="#c6dbef",
        alpha=0.5,
        zorder=0,
        label=f"{s['ci_prob']:.0%} interval",
    )
    assumed = info.transport["assumed"]
    ax.axvline(assumed, color="#444444", linestyle="--", label=f"assumed {assumed:g}")
    if s.get("threshold") is not None:
        b = s["threshold"]
        ax.axvline(b, color="#de2d26", linestyle=":", label=f"break-even {b:.2f}")
    ax.set_xlabel("Transport multiplier (launch benefit / experiment benefit, same cells and mix)")
    ax.set_ylabel("Posterior draws")
    ax.set_title(f"Posterior transport multiplier: mean {s['mean']:.2f}")
    ax.legend(frameon=False)
    fig.tight_layout()
    save(fig, path)
    return path


def _checks(s: RunSummary, kind: str) -> str:
    """``pass`` or the failed checks of one kind (``sampler`` or data)."""
    results = [c for c in s.checks.results if (c.kind == "sampler") == (kind == "sampler")]
    failed = [c.name for c in results if not c.passes]
    return "pass" if not failed else "FAIL: " + ", ".join(failed)


def _side_by_side(parent: RunSummary, s: RunSummary, info: UpdateSummary) -> Table:
    before, after = info.decision_before, info.decision_after
    t = info.transport["summary"]

    def choice(d: dict[str, Any]) -> str:
        return d["decision"] + (f": {d['label']}" if d.get("label") else "")

    rows = [
        ["Recommendation", choice(before), choice(after)],
        [
            "Expected launch value of that policy",
            usd(before["expected_value"]),
            usd(after["expected_value"]),
        ],
        ["P(launch value > 0)", pct(before["prob_positive"]), pct(after["prob_positive"])],
        [
            "Transport multiplier",
            f"{info.transport['assumed']:g} (assumed in the card)",
            f"{t['mean']:.2f} posterior mean, {t['ci_prob']:.0%} interval "
            f"{t['lower']:.2f} to {t['upper']:.2f}",
        ],
        [
            "Data",
            f"{parent.data.n_units:,} customers ({parent.data.source})",
            f"+ {info.rollout_data['n_units']:,} rollout customers "
            f"({info.rollout_data['n_holdout']:,} in the holdout)",
        ],
        [
            "Experiment levels fitted",
            ", ".join(info.levels[:-1]),
            ", ".join(info.levels),
        ],
        ["Sampler checks (card thresholds)", _checks(parent, "sampler"), _checks(s, "sampler")],
        ["Data checks", _checks(parent, "data"), _checks(s, "data") + " (on the rollout)"],
    ]
    return Table(
        ["", f"Earlier run {parent.run.id}", f"This update {s.run.id}"],
        rows,
        align="lll",
        caption="Launch values in dollars at launch scale after fixed cost, for the policy each "
        "run recommends (a blocked run: the rule's provisional choice).",
    )


def update_blocks(
    parent: RunSummary, s: RunSummary, info: UpdateSummary, figure: Path | None
) -> list[Any]:
    """The update section's blocks (see the module docstring)."""
    t = info.transport["summary"]
    r = info.rollout_data
    blocks: list[Any] = [Heading("Post-launch update")]
    changed = "changes" if info.decision_changed else "does not change"
    regret = info.regret_of_earlier_choice
    regret_text = (
        f" Keeping the earlier choice would cost {usd(regret)} in expected launch value under the "
        "updated posterior."
        if regret is not None and regret > 0
        else ""
    )
    blocks.append(
        Callout(
            f"**The rollout read {changed} the decision.** The launch kept "
            f"{t['mean']:.2f} of the experiment's benefit (posterior mean transport multiplier; "
            f"{t['ci_prob']:.0%} interval {t['lower']:.2f} to {t['upper']:.2f}; "
            f"P(multiplier < 1) = {pct(t['prob_below_1'])}); the card assumed "
            f"{info.transport['assumed']:g}." + regret_text,
            "warn" if info.decision_changed or any(x.fires for x in info.stop_rules) else "info",
        )
    )
    blocks.append(
        Paragraph(
            f"Rollout data: {r['n_units']:,} launch customers read at the outcome horizon, "
            f"{r['n_holdout']:,} of them in the randomized holdout (designed share "
            f"{info.holdout_share:.0%}), added to the fit as {info.factor} = '{info.rollout}' "
            f"next to {', '.join(repr(x) for x in info.levels[:-1])}; the model's other terms "
            "are shared across its levels, so the rollout and the experiment inform each other. "
            f"Their own level effects are pooled only when the card gives sigma_{info.factor} a "
            "prior: a factor of fewer than five levels is not pooled by default."
        )
    )
    blocks.append(
        Paragraph(
            "**Estimand.** The transport multiplier is, per posterior draw, "
            + info.transport["estimand"]
            + ". The mix is the rollout's; a change of mix is not counted as decay. Rollout "
            f"benefit {usd(info.transport['rollout_benefit']['mean'], 2)} versus experiment "
            f"benefit {usd(info.transport['experiment_benefit']['mean'], 2)} per assigned "
            "customer at that mix. The decision below multiplies every benefit effect of the "
            "experiment's cells by the multiplier draw by draw (net margin follows its "
            "components); its remaining 'transport multiplier' assumption is 1 (no further decay)."
        )
    )
    if figure is not None:
        blocks.append(
            Figure(figure, "Posterior of the transport multiplier.", rel=f"figures/{figure.name}")
        )
    blocks.append(Heading("Earlier run and update side by side", level=3))
    blocks.append(_side_by_side(parent, s, info))
    rows = [
        [
            p.label,
            usd(p.expected_value_before),
            usd(p.expected_value_after),
            usd(p.change) if p.change is not None else "n/a",
            pct(p.prob_positive_before),
            pct(p.prob_positive_after),
        ]
        for p in info.policies
    ]
    blocks.append(
        Table(
            [
                "Policy",
                "E[value] before",
                "E[value] after",
                "Change",
                "P(>0) before",
                "P(>0) after",
            ],
            rows,
            caption="Expected launch value (dollars at launch scale, after fixed cost) and "
            "P(launch value > 0), per policy, in the earlier run and after the update.",
        )
    )
    blocks.append(Heading("Stop rules on the rollout", level=3))
    if info.stop_rules:
        srows = []
        for x in info.stop_rules:
            if x.type == "transport_below":
                event = f"multiplier < {x.threshold:.2f}"
                value = f"{x.mean:.2f} ({x.lower:.2f} to {x.upper:.2f})"
                raw = "n/a"
            else:
                op = ">" if x.type == "effect_above" else "<"
                event = f"{x.outcome} effect {op} {num(x.threshold)}"
                value = f"{num(x.mean)} ({num(x.lower)} to {num(x.upper)})"
                raw = f"{num(x.raw_estimate)} ± {num(x.raw_std_error)}"
            srows.append(
                [
                    x.name,
                    event,
                    value,
                    raw,
                    pct(x.probability),
                    f">= {pct(x.min_prob)}",
                    "**FIRES**" if x.fires else "holds",
                ]
            )
        blocks.append(
            Table(
                [
                    "Rule",
                    "Event",
                    "Posterior (90% interval)",
                    "Raw ± SE",
                    "P(event)",
                    "Fires at",
                    "Result",
                ],
                srows,
                align="lllrrrl",
                caption="Effects are the rollout's (treated minus holdout) per assigned customer "
                "at the rollout's mix, in the outcome's unit; a rule fires when the posterior "
                "probability of its event reaches its threshold.",
            )
        )
    if info.notes:
        blocks.append(Bullets(info.notes))
    return blocks


def build_update_memo(
    parent: RunSummary,
    summary: RunSummary,
    info: UpdateSummary,
    card: ModelCard | None,
    figures: dict[str, Path],
) -> Document:
    """The update's memo: the update section, then the standard memo of the new decision."""
    doc = build_memo(summary, card, figures)
    out = Document(
        title=doc.title.replace("Decision memo:", "Decision memo (post-launch update):"),
        subtitle=doc.subtitle + f" · updates run {parent.run.id}",
    )
    out.add(*update_blocks(parent, summary, info, figures.get("transport_multiplier")))
    out.add(Heading("The updated decision"))
    out.add(*doc.blocks)
    return out


def render_update(
    steps: Steps,
    stage: Stage,
    card: ModelCard,
    summary: RunSummary,
    view: TransportedView,
    decision: Decision,
    info: UpdateSummary,
    parent: RunSummary,
    run_folder: Path,
) -> tuple[Path, Path, dict[str, Path]]:
    """Figures and the update memo into the staged folder; returns the final paths."""
    from bayesdecide.run.figures import make_figures

    steps("Drawing figures")
    figures = make_figures(summary, view, decision, stage.path / "figures")
    figures["transport_multiplier"] = transport_figure(
        view, info, stage.path / "figures" / "transport_multiplier.png"
    )
    steps("Writing the memo")
    doc = build_update_memo(parent, summary, info, card, figures)
    (stage.path / "memo.md").write_text(to_markdown(doc), encoding="utf-8")
    (stage.path / "memo.html").write_text(render_html(doc), encoding="utf-8")
    final = {name: stage.final / "figures" / p.name for name, p in figures.items()}
    return stage.final / "memo.md", stage.final / "memo.html", final


__all__ = ["build_update_memo", "render_update", "transport_figure", "update_blocks"]
