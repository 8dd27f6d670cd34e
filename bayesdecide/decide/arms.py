"""Choosing among treatment arms: which arm, or none, is best per cell, per group and overall.

With k treatment arms against one shared control, ``tau[s, c, a, k]`` is arm ``a``'s effect in
cell ``c`` (per assigned customer, draw ``s``) and the net value of each *choice* ``j`` for a
customer of cell ``c`` is (dollars per customer, benefits transported; :mod:`.value`)::

    v[s, c, none] = 0            (the status quo: control)
    v[s, c, a]    = value of giving arm a

**P(best)** of choice ``j`` is the posterior probability that it has the highest value among the
k + 1 choices, ``P(v[j] > v[j'] for every other j')``, computed draw by draw (exact ties go to the
first choice in the order none, then the arms as listed, so the status quo keeps a tie). The
probabilities of the k + 1 choices sum to 1. Three units are reported:

* **per cell**: ``v[s, c, j]`` as above;
* **per level of a factor**: the level's average if everyone in it gets the choice,
  ``v[s, l, j] = sum_{c in l} mix[c] v[s, c, j] / sum_{c in l} mix[c]`` (per eligible customer
  of the level at launch; no fixed cost);
* **overall**: at launch scale, the policies "none" (value 0) and "arm a to everyone"
  (``N sum_c mix[c] v[s, c, a] - fixed cost``, dollars), i.e. the best single arm for everyone.
  The Bayes-optimal targeting (:mod:`.optimal`), which may give different arms to different
  cells, can beat all of them; its P(best) among every evaluated policy is in the policy table.

``best`` marks the choice with the highest posterior mean value (the Bayes choice for that unit
with no rules). Every table is tidy: one row per unit and choice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesdecide.decide._draws import interval_probs, prob
from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.evaluate import LaunchDraws
from bayesdecide.errors import SpecError

NONE = "none"
CHOICE_COLUMNS = ["choice", "share", "mean", "lower", "upper", "prob_best", "best"]


def choices(launch: LaunchDraws) -> list[str]:
    """The choices per cell: ``none``, then the treatment arms (``treatment`` with two arms)."""
    return [NONE, *(launch.arms or ["treatment"])]


def _check_arms(launch: LaunchDraws) -> None:
    if launch.arms is not None and NONE in launch.arms:
        raise SpecError(
            f"a treatment arm is named {NONE!r}, which labels the status quo in the best-arm "
            "tables; rename the arm"
        )


def choice_values(launch: LaunchDraws) -> np.ndarray:
    """(S, C, k + 1) net value per customer of each choice in each cell (dollars; none = 0)."""
    v = launch.value.reshape(launch.n_samples, len(launch.cells), launch.n_arms)
    return np.concatenate([np.zeros((*v.shape[:2], 1)), v], axis=2)


def _table(
    values: np.ndarray, units: list[str], shares: np.ndarray, names: list[str], ci_prob: float
) -> pd.DataFrame:
    """Tidy table from choice values (S, U, J): one row per unit and choice."""
    s_, u_, j_ = values.shape
    winner = values.argmax(axis=2)  # (S, U): first maximum, so none keeps ties
    p_best = np.stack([prob(winner == j) for j in range(j_)], axis=1)  # (U, J)
    mean = values.mean(axis=0)
    lo_q, hi_q = interval_probs(ci_prob)
    lower, upper = np.quantile(values, [lo_q, hi_q], axis=0)
    best = mean.argmax(axis=1)
    return pd.DataFrame(
        {
            "unit": np.repeat(units, j_),
            "choice": np.tile(names, u_),
            "share": np.repeat(shares, j_),
            "mean": mean.ravel(),
            "lower": lower.ravel(),
            "upper": upper.ravel(),
            "prob_best": p_best.ravel(),
            "best": (np.arange(j_)[None, :] == best[:, None]).ravel(),
        }
    )


def best_arm_cells(
    launch: LaunchDraws, ci_prob: float = DECISION_DEFAULTS["ci_prob"]
) -> pd.DataFrame:
    """P(best) of every choice in every cell (module docstring).

    Columns: ``cell``, ``choice`` (``none`` or an arm), ``share`` (the cell's launch share),
    ``mean``, ``lower``, ``upper`` (posterior mean and equal-tailed ``ci_prob`` interval of the
    choice's net value per customer, dollars), ``prob_best`` (P(this choice has the highest
    value in the cell)), ``best`` (the choice of highest posterior mean).
    """
    _check_arms(launch)
    t = _table(
        choice_values(launch),
        [str(c) for c in launch.cells],
        launch.cell_mix,
        choices(launch),
        ci_prob,
    )
    return t.rename(columns={"unit": "cell"})


def best_arm_levels(
    launch: LaunchDraws, factor: str, ci_prob: float = DECISION_DEFAULTS["ci_prob"]
) -> pd.DataFrame:
    """P(best) of every choice in every level of ``factor``, each choice given to everyone in the
    level (module docstring). Columns: ``factor``, ``level``, then as :func:`best_arm_cells`
    (``share``: the level's launch share; values per eligible customer of the level). Levels
    without customers at launch are left out."""
    _check_arms(launch)
    labels = launch.labels(factor)
    levels = list(pd.unique(pd.Series(labels)))
    codes = pd.Index(levels).get_indexer(labels)
    onehot = np.eye(len(levels))[codes] * launch.cell_mix[:, None]  # (C, L)
    share = onehot.sum(axis=0)
    keep = share > 0
    v = choice_values(launch)  # (S, C, J)
    level_v = np.einsum("scj,cl->slj", v, onehot[:, keep]) / share[keep][None, :, None]
    t = _table(
        level_v,
        [str(lv) for lv in np.array(levels, dtype=object)[keep]],
        share[keep],
        choices(launch),
        ci_prob,
    )
    return t.rename(columns={"unit": "level"}).assign(factor=factor)[
        ["factor", "level", *CHOICE_COLUMNS]
    ]


def best_arm_overall(
    launch: LaunchDraws, ci_prob: float = DECISION_DEFAULTS["ci_prob"]
) -> pd.DataFrame:
    """P(best) among "none" and "one arm to everyone", at launch scale (module docstring).

    Columns as :func:`best_arm_cells` without the unit (``share`` is 1, the whole launch
    population), values in dollars at launch scale after the fixed cost.
    """
    _check_arms(launch)
    n_cells = len(launch.cells)
    everyone = launch.masks_from(np.arange(launch.n_arms)[:, None] * np.ones((1, n_cells), int))
    values = launch.evaluate(everyone).value  # (S, A)
    values = np.concatenate([np.zeros((len(values), 1)), values], axis=1)[:, None, :]
    t = _table(values, ["all"], np.ones(1), choices(launch), ci_prob)
    return t.drop(columns="unit")


__all__ = [
    "CHOICE_COLUMNS",
    "NONE",
    "best_arm_cells",
    "best_arm_levels",
    "best_arm_overall",
    "choice_values",
    "choices",
]
