"""The recommendation rule, explicit and auditable: the one implementation (Python and memo alike).

1. **Checks gate.** If any data check (sample ratio mismatch, covariate balance) or sampler
   diagnostic (R-hat, bulk ESS, divergences) fails, there is **no launch recommendation**: the
   reasons say which check failed and what to fix. Numbers are still reported, marked provisional.
2. **Admissible policies** are those that pass every pre-registered rule (guardrail); a group
   rule passes only when it passes for every level of its factor.
3. **Choice.** Among admissible policies that treat someone, take the one with the highest
   expected launch value (dollars, after fixed cost; ties go to the policy listed first). If none
   has a positive expected value, the recommendation is **do not launch** (status quo), with the
   reasons each policy failed (each failed rule with its posterior probability and what it
   needs; for a group rule, the worst level).
4. **Wording.** A policy that treats every eligible customer is "Launch to all eligible
   customers"; any other is "Launch targeted policy".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from bayesdecide.decide._draws import usd_text
from bayesdecide.decide.checks import Checks
from bayesdecide.decide.guardrails import result_text

NO_LAUNCH = "Do not launch"
LAUNCH_ALL = "Launch to all eligible customers"
LAUNCH_TARGETED = "Launch targeted policy"
BLOCKED = "No launch recommendation"
RULE_TEXT = (
    "no launch recommendation while a data check or a sampler diagnostic fails; otherwise "
    "recommend the policy with the highest expected launch value among those that pass every "
    "rule; if none has a positive expected value, do not launch."
)


@dataclass(frozen=True)
class Recommendation:
    """What the rule recommends and why.

    ``decision`` is one of :data:`LAUNCH_ALL`, :data:`LAUNCH_TARGETED`, :data:`NO_LAUNCH`,
    :data:`BLOCKED`; ``policy`` the policy id to launch (``None`` when not launching);
    ``rule_policy`` the policy the rule picks when the checks gate is ignored (the provisional
    choice of a blocked decision); ``reasons`` sentences; ``loosened_checks`` thresholds made less
    strict than the run's (the recommendation rests on them).
    """

    decision: str = field(metadata={"doc": "the recommendation, one of four wordings"})
    policy: str | None = field(metadata={"doc": "policy id to launch; null when not launching"})
    rule_policy: str | None = field(
        metadata={"doc": "the rule's choice ignoring the checks gate (provisional when blocked)"}
    )
    launch: bool = field(metadata={"doc": "whether a launch is recommended"})
    blocked: bool = field(metadata={"doc": "whether failed checks block any recommendation"})
    reasons: tuple[str, ...] = field(metadata={"doc": "the reasons, one sentence each"})
    loosened_checks: tuple[str, ...] = field(
        default=(), metadata={"doc": "check thresholds made less strict than the run's"}
    )


def _failed_rules(guardrails: pd.DataFrame, policy: str) -> list[str]:
    """The rules ``policy`` fails, with their probability (and worst level for a group rule)
    when the table has them."""
    rows = guardrails[(guardrails["policy"] == policy) & ~guardrails["passes"].astype(bool)]
    if not {"probability", "threshold", "comparison"} <= set(rows.columns):
        return [str(r) for r in rows["rule"]]
    return [
        result_text(
            str(r["rule"]),
            float(r["probability"]),
            float(r["threshold"]),
            str(r["comparison"]),
            r.get("factor"),
            r.get("worst_level"),
        )
        for r in rows.to_dict("records")
    ]


def _check_reasons(checks: Checks) -> list[str]:
    reasons = []
    for c in checks.failures:
        what = "Sampler diagnostic" if c.kind == "sampler" else "Data check"
        reasons.append(f"{what} '{c.name}' failed: {c.detail}.")
    kinds = {c.kind for c in checks.failures}
    if "sampler" in kinds:
        reasons.append(
            "Re-fit with more tuning/draws (or a higher target_accept) until R-hat, ESS and "
            "divergences pass; the posterior numbers in this memo are provisional."
        )
    if kinds - {"sampler"}:
        reasons.append(
            "Investigate assignment and logging (sample ratio, covariate balance) before any "
            "effect is trusted; the experiment may need to be re-run."
        )
    return reasons


def recommend(
    policies: pd.DataFrame,
    guardrails: pd.DataFrame,
    checks: Checks | None,
    labels: Mapping[str, str],
) -> Recommendation:
    """Apply the rule (module docstring).

    Parameters
    ----------
    policies:
        Indexed by policy id: ``expected_value`` (dollars), ``prob_positive``, ``treated_share``,
        ``passes_guardrails`` (:meth:`bayesdecide.decide.Decision.policy_table`).
    guardrails:
        Tidy ``rule, policy, passes`` (:meth:`bayesdecide.decide.Decision.guardrail_table`).
    checks:
        Data and sampler checks; ``None`` when nothing was checked (no gate).
    labels:
        Policy id -> display name, for the reasons.
    """
    ev = policies["expected_value"].astype(float)
    share = policies["treated_share"].fillna(0.0).astype(float)
    treating = [p for p in policies.index if share[p] > 0]
    admissible = [p for p in treating if bool(policies.loc[p, "passes_guardrails"]) and ev[p] > 0]
    best = max(admissible, key=lambda p: ev[p]) if admissible else None
    loosened = tuple(checks.loosened) if checks is not None else ()

    def name(p: str) -> str:
        return labels.get(p, p)

    if checks is not None and not checks.ok:
        return Recommendation(
            BLOCKED, None, best, False, True, tuple(_check_reasons(checks)), loosened
        )
    reasons: list[str] = []
    if best is None:
        for p in treating:
            fails = _failed_rules(guardrails, p)
            if fails:
                reasons.append(f"'{name(p)}' fails {', '.join(fails)}.")
            elif ev[p] <= 0:
                reasons.append(f"'{name(p)}' has expected launch value {usd_text(ev[p])}.")
        reasons.append(
            "No policy that treats customers passes every pre-registered rule with a positive "
            "expected launch value."
        )
        return Recommendation(NO_LAUNCH, None, None, False, False, tuple(reasons), loosened)
    reasons.append(
        f"'{name(best)}' has the highest expected launch value among the policies that pass every "
        f"pre-registered rule: {usd_text(ev[best])}, P(value > 0) = "
        f"{policies.loc[best, 'prob_positive']:.0%}."
    )
    for p in treating:
        if p != best and ev[p] > ev[best]:
            reasons.append(
                f"'{name(p)}' has a higher expected value ({usd_text(ev[p])}) but fails "
                f"{', '.join(_failed_rules(guardrails, p)) or 'a rule'}."
            )
    if loosened:
        reasons.append(
            "This recommendation rests on loosened checks (" + "; ".join(loosened) + ")."
        )
    decision = LAUNCH_ALL if share[best] >= 0.999 else LAUNCH_TARGETED
    return Recommendation(decision, best, best, True, False, tuple(reasons), loosened)


__all__ = [
    "BLOCKED",
    "LAUNCH_ALL",
    "LAUNCH_TARGETED",
    "NO_LAUNCH",
    "RULE_TEXT",
    "Recommendation",
    "recommend",
]
