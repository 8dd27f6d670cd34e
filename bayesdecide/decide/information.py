"""Value of information for the launch decision (dollars at launch scale).

``EVPI = E[max_p V_p] - max_p E[V_p]`` for a set of policies ``p``: what perfect knowledge of every
cell's effect would be worth before choosing among them.

For cell-wise targeting (treat each cell whose value is positive) EVPI decomposes over cells::

    EVPI_targeting = sum_c N * mix[c] * (E[max(v_c, 0)] - max(E[v_c], 0))

exactly when the fixed cost is ignored (it is: the decomposition is a per-cell marginal value).
With several treatment arms the choice per cell is none or one arm, and ``max(v_c, 0)`` becomes
``max(0, max_a v_ca)`` (``v_ca``: net value of giving arm ``a`` in cell ``c``). Per factor level,
the targeting EVPPI of learning that level's cells is the sum over its cells.

Per-level EVPPI for the choice among the policy set (learn one level's cells perfectly, the rest
stay uncertain) uses a vectorised approximation: the draws of the level's cells are kept and every
other cell is replaced by its posterior mean, i.e. ``E[V_p | level] ~= V_p(level draws, other cells
at their means)``. This is exact when the other cells' values are posterior-independent of the
level's; under hierarchical pooling the cells are correlated, so it is an approximation (it ignores
what learning a level says about the others).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import DEFAULT_SAMPLE_DIMS, as_sample_dims, flatten
from bayesdecide.decide.evaluate import LaunchDraws


def evpi_values(values: np.ndarray) -> float:
    """EVPI (dollars) from launch value draws ``(S, P)``: E[max_p V] - max_p E[V]."""
    values = np.asarray(values, dtype=float)
    # >= 0 exactly for sample means (Jensen); clip float round-off
    return max(0.0, float(values.max(axis=1).mean() - values.mean(axis=0).max()))


def evpi(values: xr.DataArray, sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS) -> float:
    """EVPI in dollars from policy value draws with dims ``(*sample_dims, policy)``."""
    dims = as_sample_dims(sample_dims)
    return evpi_values(flatten(values, dims, ("policy",)))


def targeting_evpi_cells(launch: LaunchDraws) -> np.ndarray:
    """(C,) per-cell targeting EVPI in dollars: N * mix_c * (E[max(v_c,0)] - max(E[v_c],0)), with
    ``v_c`` the best arm's value ``max_a v_ca`` inside the expectation (several arms)."""
    v = launch.value.reshape(launch.n_samples, -1, launch.n_arms)  # (S, C, A)
    best_known = np.maximum(v.mean(axis=0).max(axis=1), 0)
    gain = np.maximum(v.max(axis=2), 0).mean(axis=0) - best_known
    return launch.population.n_eligible * launch.cell_mix * gain


def evppi_level_values(launch: LaunchDraws, masks: np.ndarray, in_level: np.ndarray) -> np.ndarray:
    """(S, P) launch values with options (cells) outside ``in_level`` at their posterior mean
    value."""
    pop = launch.population
    w = np.atleast_2d(masks) * launch.mix
    v = np.where(in_level[None], launch.value, launch.mean_value[None])
    return pop.n_eligible * (v @ w.T) - pop.fixed_cost * pop.cost_scale(masks, launch.mix)


def value_of_information(
    launch: LaunchDraws,
    masks: np.ndarray,
    names: Sequence[str],
    factors: Sequence[str] = (),
) -> pd.DataFrame:
    """EVPI overall and EVPPI per factor level, in dollars.

    Rows: ``factor="all", level="all"`` (EVPI), then one per level of each factor. Columns:
    ``evpi_policies`` (choice among the given policies; per level: the approximation in the module
    docstring), ``evpi_targeting`` (cell-wise targeting, summed over the level's cells), ``share``
    (the level's launch share).
    """
    pd_ = launch.evaluate(masks, names)
    cells_gain = targeting_evpi_cells(launch)
    rows = [
        {
            "factor": "all",
            "level": "all",
            "evpi_policies": evpi_values(pd_.value),
            "evpi_targeting": float(cells_gain.sum()),
            "share": 1.0,
        }
    ]
    for factor in factors:
        labels = launch.labels(factor)
        for level in pd.unique(pd.Series(labels)):
            in_level = labels == level  # cells
            options = in_level[launch.option_cell]
            rows.append(
                {
                    "factor": factor,
                    "level": level,
                    "evpi_policies": evpi_values(evppi_level_values(launch, masks, options)),
                    "evpi_targeting": float(cells_gain[in_level].sum()),
                    "share": float(launch.cell_mix[in_level].sum()),
                }
            )
    return pd.DataFrame(rows)
