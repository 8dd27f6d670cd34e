"""The transport multiplier, estimated: the launch's effect over the experiment's, per draw.

A card assumes a *transport multiplier* (``[launch].transport_multiplier``, 1 = the launch keeps
the experiment's benefit). Once a rollout with a randomized holdout has been read and fitted
together with the experiment (the rollout as another level of the experiment factor), the
multiplier has a posterior. Its estimand, per posterior draw ``s``::

    m[s] = sum_c w[c] * b_R[s, c]  /  sum_c w[c] * b_E[s, c]

- ``c`` ranges over the rollout's cells (combinations of the levels of every factor but the
  experiment factor), ``w[c]`` is the rollout's share of customers in cell ``c`` (its launch
  mix, summing to 1);
- ``b[s, c] = sum_k weight[k] * tau[s, c, k]`` over the card's benefit outcomes
  (``[value].transport_outcomes``, e.g. gross margin with weight 1): the benefit in dollars per
  assigned customer, of the rollout level (``b_R``: treated versus holdout in the launch) and of
  the reference experiment for the same cells (``b_E``; a cell the experiment did not observe is
  predicted from the hierarchy).

So ``m`` is the launch's mix-weighted benefit over the experiment's benefit *on the same cells and
mix*: a change in mix is not counted as decay. The decision after an update uses ``m`` draw by
draw: every benefit outcome's effect in the experiment's cells is multiplied by ``m[s]``
(:func:`transport_tau`; derived outcomes such as net margin follow their components), instead of
the card's assumed constant. At the rollout's mix the transported benefit equals the rollout's
benefit, draw by draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from bayesdecide.data.cells import CELL_SEPARATOR
from bayesdecide.data.combine import ExperimentView
from bayesdecide.errors import SpecError

SAMPLE_DIMS = ("chain", "draw")


@dataclass(frozen=True)
class TransportDraws:
    """Posterior draws of the transport multiplier and its two parts.

    Attributes
    ----------
    multiplier:
        ``m`` (chain, draw), dimensionless.
    rollout_benefit, experiment_benefit:
        Numerator and denominator (chain, draw): weighted benefit per assigned customer at the
        rollout's mix, dollars (the benefit weights' unit) per customer.
    mix:
        The rollout's cell shares (cell keys without the experiment factor).
    outcomes, weights:
        The benefit outcomes and their weights.
    """

    multiplier: xr.DataArray
    rollout_benefit: xr.DataArray
    experiment_benefit: xr.DataArray
    mix: dict[str, float]
    outcomes: tuple[str, ...]
    weights: dict[str, float] = field(default_factory=dict)

    def summary(self, ci_prob: float = 0.90, threshold: float | None = None) -> dict[str, float]:
        """Mean, sd, median, the central ``ci_prob`` interval (``lower``/``upper``),
        ``prob_below_1`` = P(m < 1) and, with ``threshold``, ``prob_below_threshold``."""
        x = np.asarray(self.multiplier.values, dtype=float).ravel()
        lo, med, hi = np.quantile(x, [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2])
        out = {
            "mean": float(x.mean()),
            "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0,
            "median": float(med),
            "lower": float(lo),
            "upper": float(hi),
            "ci_prob": float(ci_prob),
            "prob_below_1": float(np.mean(x < 1.0)),
        }
        if threshold is not None and np.isfinite(threshold):
            out["threshold"] = float(threshold)
            out["prob_below_threshold"] = float(np.mean(x < threshold))
        return out


def _keys(tau: xr.DataArray, factors: Sequence[str]) -> list[str]:
    return [
        CELL_SEPARATOR.join(str(tau[f].values[i]) for f in factors)
        for i in range(tau.sizes["cell"])
    ]


def benefit(tau: xr.DataArray, weights: Mapping[str, float]) -> xr.DataArray:
    """``sum_k weight[k] * tau[..., k]`` over the benefit outcomes (drops ``outcome``)."""
    w = xr.DataArray(
        [float(v) for v in weights.values()],
        dims="outcome",
        coords={"outcome": list(weights)},
    )
    return (tau.sel(outcome=list(weights)) * w).sum("outcome")


def transport_draws(
    fit: Any,
    factor: str,
    reference: str,
    rollout: str,
    weights: Mapping[str, float],
) -> TransportDraws:
    """The transport multiplier's draws (module docstring) from a fit of the experiment and the
    rollout together.

    Parameters
    ----------
    fit:
        A :class:`~bayesdecide.Fit` whose ``factor`` has levels ``reference`` and ``rollout``.
    factor:
        The experiment factor.
    reference, rollout:
        Its levels: the experiment the decision was made on and the rollout's read.
    weights:
        Benefit outcome -> weight (dollars per unit of the outcome's effect).
    """
    if not weights:
        raise SpecError(
            "the transport multiplier needs benefit outcomes: set [value].transport_outcomes in "
            "the card (e.g. ['gross_margin'])"
        )
    tau = fit.tau
    if factor not in tau.coords:
        raise SpecError(f"the fit has no factor {factor!r}")
    labels = np.asarray(tau[factor].values).astype(str)
    others = [
        str(c)
        for c in tau.coords
        if c not in ("cell", factor) and tau[c].dims == ("cell",) and c != "cell_share"
    ]
    keys = np.asarray(_keys(tau, others))
    in_rollout = labels == rollout
    if not in_rollout.any():
        raise SpecError(f"the fit has no cells of {factor} = {rollout!r}")
    n = fit.effects["n_control"] + fit.effects["n_treatment"]
    n = np.asarray(n.sel(cell=tau["cell"].values).values, dtype=float)
    w = n[in_rollout] / n[in_rollout].sum()
    r_keys = keys[in_rollout]
    b_all = benefit(tau, weights)
    b_r = b_all.isel(cell=np.flatnonzero(in_rollout))
    ref_index = {k: i for i, k in enumerate(keys) if labels[i] == reference}
    missing = [k for k in r_keys if k not in ref_index]
    columns = []
    if missing:
        predicted = fit.predict_new({factor: reference})
        pkeys = _keys(predicted, others)
        b_pred = benefit(predicted, weights)
        pindex = {k: i for i, k in enumerate(pkeys)}
        absent = [k for k in missing if k not in pindex]
        if absent:  # pragma: no cover - predict_new covers every combination of known levels
            raise SpecError(f"cannot predict the experiment's effect in cells {absent}")
    for k in r_keys:
        if k in ref_index:
            columns.append(b_all.isel(cell=ref_index[k]).drop_vars(_cell_coords(b_all)))
        else:
            columns.append(b_pred.isel(cell=pindex[k]).drop_vars(_cell_coords(b_pred)))
    b_e = xr.concat(columns, dim="cell")
    wr = xr.DataArray(w, dims="cell")
    num = (b_r.drop_vars(_cell_coords(b_r)) * wr).sum("cell")
    den = (b_e * wr).sum("cell")
    if bool((np.abs(den) < 1e-12).any()):
        raise SpecError(
            "the experiment's benefit is zero in some draws, so the multiplier is undefined"
        )
    return TransportDraws(
        multiplier=(num / den).rename("transport_multiplier"),
        rollout_benefit=num.rename("rollout_benefit"),
        experiment_benefit=den.rename("experiment_benefit"),
        mix={str(k): float(v) for k, v in zip(r_keys, w, strict=True)},
        outcomes=tuple(weights),
        weights={str(k): float(v) for k, v in weights.items()},
    )


def _cell_coords(x: xr.DataArray) -> list[str]:
    return [str(c) for c in x.coords if "cell" in x[c].dims]


def benefit_loadings(fit: Any, outcomes: Sequence[str], benefits: Sequence[str]) -> np.ndarray:
    """(K, B): how much of each benefit outcome's effect each outcome contains: 1 for the benefit
    itself, its weight in a derived outcome (net margin = gross margin - ...), else 0."""
    out = np.zeros((len(outcomes), len(benefits)))
    for j, b in enumerate(benefits):
        if b in outcomes:
            out[list(outcomes).index(b), j] = 1.0
    inputs = None
    try:
        inputs = fit.inputs
    except AttributeError:
        inputs = None
    if inputs is not None and inputs.derived:
        for d, row in zip(inputs.derived, np.asarray(inputs.derive_weights), strict=True):
            weights = dict(zip(inputs.independent, row, strict=True))
            for j, b in enumerate(benefits):
                if d in outcomes and b in weights:
                    out[list(outcomes).index(d), j] = float(weights[b])
    return out


def transport_tau(
    tau: xr.DataArray, multiplier: xr.DataArray, loadings: np.ndarray, benefits: Sequence[str]
) -> xr.DataArray:
    """``tau`` with every benefit outcome's effect multiplied by ``multiplier`` draw by draw
    (derived outcomes follow through ``loadings``): ``tau[s,c,k] + (m[s] - 1) * sum_b L[k,b]
    tau[s,c,b]``."""
    bt = tau.sel(outcome=list(benefits))
    load = xr.DataArray(
        loadings,
        dims=("outcome", "benefit"),
        coords={"outcome": tau["outcome"].values, "benefit": list(benefits)},
    )
    extra = (bt.rename(outcome="benefit").drop_vars("benefit") * load.drop_vars("benefit")).sum(
        "benefit"
    )
    return (tau + (multiplier - 1.0) * extra).transpose(*tau.dims)


class TransportedView(ExperimentView):
    """The reference experiment's cells of an update's fit, with the posterior transport
    multiplier applied to the benefit outcomes draw by draw (duck-typed like a Fit)."""

    def __init__(
        self, fit: Any, factor: str, level: str, draws: TransportDraws, loadings: np.ndarray
    ) -> None:
        super().__init__(fit, factor, level)
        self.transport = draws
        self.tau = transport_tau(self.tau, draws.multiplier, loadings, draws.outcomes)


def transported_view(
    fit: Any, factor: str, reference: str, rollout: str, weights: Mapping[str, float]
) -> TransportedView:
    """The decision's view of an update: reference cells, benefits times ``m`` per draw."""
    draws = transport_draws(fit, factor, reference, rollout, weights)
    outcomes = [str(o) for o in fit.tau["outcome"].values]
    return TransportedView(
        fit, factor, reference, draws, benefit_loadings(fit, outcomes, draws.outcomes)
    )


__all__ = [
    "TransportDraws",
    "TransportedView",
    "benefit",
    "benefit_loadings",
    "transport_draws",
    "transport_tau",
    "transported_view",
]
