"""The memo's figures, drawn from the run summary, the fit and the decision into ``figures/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bayesdecide.data.effects import arm_effects
from bayesdecide.decide import TREAT_NONE, Decision
from bayesdecide.run.summary import RunSummary


def make_figures(
    summary: RunSummary, fit: Any, decision: Decision, folder: Path
) -> dict[str, Path]:
    """Draw the memo's figures into ``folder`` (PNG); returns name -> path."""
    from bayesdecide.report import plots

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    labels = summary.labels
    primary = summary.primary_outcome
    po = summary.outcomes[primary]
    ci_prob = summary.settings.ci_prob

    def save(name: str, fig: Any) -> None:
        out[name] = folder / f"{name}.png"
        plots.save(fig, out[name])

    for arm in decision.arms or [None]:
        effects, tau, suffix, label = fit.effects, decision.tau, "", po.label
        if arm is not None:  # one figure per treatment arm, against the control
            effects = arm_effects(fit.effects, arm)
            tau = decision.tau.sel(treatment_arm=arm, drop=True)
            suffix, label = f"_{arm}", f"{po.label} ({arm})"
        save(
            f"shrinkage{suffix}",
            plots.effects_shrinkage(
                effects, tau, primary, label=label, unit=po.unit, ci_prob=ci_prob
            ),
        )
        save(
            f"effects_by_factor{suffix}",
            plots.effects_by_factor(
                effects,
                tau,
                primary,
                summary.hierarchy.factors,
                fit.cell_share,
                label=label,
                unit=po.unit,
                ci_prob=ci_prob,
            ),
        )
    focus = decision.break_even_policy
    save(
        "value_posterior",
        plots.value_posterior(
            decision.policy_values.sel(policy=focus),
            policy=labels[focus],
            large_loss=summary.settings.loss_threshold,
        ),
    )
    table = decision.policy_table().rename(index=labels)
    save("policy_values", plots.policy_values(table, recommended=labels[focus]))
    rows = [
        {
            "rule": g.rule,
            "policy": labels[g.policy],
            "probability": g.probability,
            "passes": g.passes,
            "required": g.threshold,
            "comparison": g.comparison,
        }
        for g in summary.guardrails
        if g.policy != TREAT_NONE  # the status quo is not held to the rules
    ]
    if rows:
        save("guardrails", plots.guardrail_probabilities(rows))
    curves = {
        name: pd.DataFrame([vars(p) for p in s.points]).set_index("value")
        for name, s in summary.sensitivity.items()
        if name != "fixed_cost"
    }
    be = {name: vars(b) for name, b in summary.break_even.items()}
    current = {name: be[name]["current"] for name in curves if name in be}
    save(
        "sensitivity",
        plots.sensitivity_curves(curves, break_even=be, current=current, policy=labels[focus]),
    )
    arms = summary.arms
    if arms is not None:
        panels = {
            f"by {f.replace('_', ' ')}": pd.DataFrame([vars(c) for c in rows])
            for f, rows in arms.by_level.items()
        }
        panels["everyone gets one arm (launch scale)"] = pd.DataFrame(
            [vars(c) for c in arms.overall]
        )
        save("best_arm", plots.best_arm_probabilities(panels))
    comp = summary.comparison
    if comp is not None:
        save(
            "region_comparison",
            plots.region_comparison(
                pd.DataFrame(comp.pairwise).T,
                title=f"P(row {comp.factor} has higher net value per customer than column)",
            ),
        )
    return out


__all__ = ["make_figures"]
