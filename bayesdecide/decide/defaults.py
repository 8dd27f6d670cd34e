"""Decision settings used when neither the caller nor the model card gives them: the one place.

``loss_threshold``: X in P(launch value < -X), dollars at launch scale. ``decision_threshold``:
the P(value > 0) at which break-even thresholds are read. ``ci_prob``: probability of every
equal-tailed posterior interval (``lower``/``upper``) in the decision tables and the memo.
``include_optimal``: also evaluate the Bayes-optimal targeting policy.
"""

from __future__ import annotations

from types import MappingProxyType

DECISION_DEFAULTS = MappingProxyType(
    {
        "loss_threshold": 500_000.0,  # dollars
        "decision_threshold": 0.8,  # probability
        "ci_prob": 0.95,  # probability
        "include_optimal": True,
    }
)

__all__ = ["DECISION_DEFAULTS"]
