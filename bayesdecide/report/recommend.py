"""The recommendation rule, explicit and auditable.

1. **Checks gate.** If any data check (sample ratio mismatch, covariate balance) or sampler
   diagnostic (R-hat, bulk ESS, divergences) fails, there is **no launch recommendation**: the
   memo says which check failed and what to fix. Numbers are still reported, marked provisional.
2. **Admissible policies** are those that pass every pre-registered rule (guardrail).
3. **Choice.** Among admissible policies that treat someone, take the one with the highest
   expected launch value (dollars, after fixed cost). If none has a positive expected value,
   the recommendation is **do not launch** (status quo), with the reasons each policy failed.
4. **Wording.** A policy that treats every eligible customer is "Launch to all eligible
   customers"; any other is "Launch targeted policy".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NO_LAUNCH = "Do not launch"
LAUNCH_ALL = "Launch to all eligible customers"
LAUNCH_TARGETED = "Launch targeted policy"
BLOCKED = "No launch recommendation"


def _fmt_money(x: float) -> str:
    return f"-${abs(x):,.0f}" if x < 0 else f"${x:,.0f}"


def admissible_policies(summary: Mapping[str, Any]) -> list[str]:
    """Policies passing every rule in ``summary["guardrails"]`` (policies without rows pass)."""
    failed = {g["policy"] for g in summary.get("guardrails", []) if not g["passes"]}
    return [p for p in summary.get("policies", {}) if p not in failed]


def failed_rules(summary: Mapping[str, Any], policy: str) -> list[str]:
    """Names of the rules ``policy`` fails."""
    return [
        g["rule"]
        for g in summary.get("guardrails", [])
        if g["policy"] == policy and not g["passes"]
    ]


def recommend(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the rule (module docstring) to a run summary.

    Returns ``{"decision", "policy", "launch", "blocked", "reasons", "rule_policy"}``: ``decision``
    is one of the four wordings; ``policy`` the policy recommended (None when blocked or not
    launching); ``rule_policy`` the policy the rule picks ignoring the checks gate (for the
    provisional numbers); ``reasons`` a list of sentences.
    """
    policies: Mapping[str, Mapping[str, Any]] = summary.get("policies", {})
    admissible = admissible_policies(summary)
    treating = [
        p
        for p in admissible
        if (policies[p].get("treated_share") or 0) > 0 and policies[p]["expected_value"] > 0
    ]
    best = max(treating, key=lambda p: policies[p]["expected_value"]) if treating else None
    decided = summary.get("recommended_policy")
    if decided is not None and decided in policies:
        # bayesdecide.decide.Decision applies the same rule; its choice is the one on record.
        row = policies[decided]
        treats = (row.get("treated_share") or 0) > 0 and row["expected_value"] > 0
        best = decided if treats else None
    labels = summary.get("policy_labels", {})

    def name(p: str) -> str:
        return labels.get(p, p)

    reasons: list[str] = []
    checks = summary.get("checks", {}).get("results", [])
    failures = [c for c in checks if not c["passes"]]
    if failures:
        for c in failures:
            what = "Sampler diagnostic" if c.get("kind") == "sampler" else "Data check"
            reasons.append(f"{what} '{c['name']}' failed: {c['detail']}.")
        if any(c.get("kind") == "sampler" for c in failures):
            reasons.append(
                "Re-fit with more tuning/draws (or a higher target_accept) until R-hat, ESS and "
                "divergences pass; the posterior numbers in this memo are provisional."
            )
        if any(c.get("kind") != "sampler" for c in failures):
            reasons.append(
                "Investigate assignment and logging (sample ratio, covariate balance) before any "
                "effect is trusted; the experiment may need to be re-run."
            )
        return {
            "decision": BLOCKED,
            "policy": None,
            "launch": False,
            "blocked": True,
            "reasons": reasons,
            "rule_policy": best,
        }
    if best is None:
        for pname, row in policies.items():
            if (row.get("treated_share") or 0) <= 0:
                continue
            fails = failed_rules(summary, pname)
            if fails:
                reasons.append(f"'{name(pname)}' fails {', '.join(fails)}.")
            elif row["expected_value"] <= 0:
                reasons.append(
                    f"'{name(pname)}' has expected launch value "
                    f"{_fmt_money(row['expected_value'])}."
                )
        reasons.append(
            "No policy that treats customers passes every pre-registered rule with a positive "
            "expected launch value."
        )
        return {
            "decision": NO_LAUNCH,
            "policy": None,
            "launch": False,
            "blocked": False,
            "reasons": reasons,
            "rule_policy": None,
        }
    row = policies[best]
    share = row.get("treated_share") or 0
    decision = LAUNCH_ALL if share >= 0.999 else LAUNCH_TARGETED
    reasons.append(
        f"'{name(best)}' has the highest expected launch value among the policies that pass every "
        f"pre-registered rule: {_fmt_money(row['expected_value'])}, P(value > 0) = "
        f"{row['prob_positive']:.0%}."
    )
    others = [
        p
        for p in policies
        if p != best
        and (policies[p].get("treated_share") or 0) > 0
        and policies[p]["expected_value"] > row["expected_value"]
    ]
    for p in others:
        reasons.append(
            f"'{name(p)}' has a higher expected value ({_fmt_money(policies[p]['expected_value'])}) "
            f"but fails {', '.join(failed_rules(summary, p)) or 'a rule'}."
        )
    return {
        "decision": decision,
        "policy": best,
        "launch": True,
        "blocked": False,
        "reasons": reasons,
        "rule_policy": best,
    }


__all__ = [
    "BLOCKED",
    "LAUNCH_ALL",
    "LAUNCH_TARGETED",
    "NO_LAUNCH",
    "admissible_policies",
    "recommend",
]
