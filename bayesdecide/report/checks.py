"""Checks that must pass before a launch is recommended: data quality and sampler health.

- **Sample ratio mismatch (SRM)**: a chi-square goodness-of-fit test of the arm counts against the
  design's assignment share. A tiny p-value (below ``srm_alpha``, e.g. 0.001) means the split is
  not what the design says: assignment or logging is broken and no effect can be trusted.
- **Covariate balance**: standardized mean differences (SMD) of pre-treatment covariates between
  arms, ``(mean_T - mean_C) / sqrt((var_T + var_C) / 2)``. Randomization makes them small; an
  ``|SMD|`` above ``max_abs_smd`` (e.g. 0.1) points to a broken randomization.
- **Sampler diagnostics**: largest R-hat, smallest bulk ESS and the number of divergences against
  the card's thresholds. Failing diagnostics mean the posterior summaries may be wrong.

Both data checks are computed from the cell statistics (:class:`~bayesdecide.data.CellStats`),
so they cost nothing beyond the one aggregation pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, what was observed, the threshold, and whether it passes."""

    name: str
    passes: bool
    observed: float
    threshold: float
    detail: str
    kind: str = "data"  # "data" or "sampler"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checks:
    """All checks of a run; ``ok`` is True when every one passes."""

    results: tuple[CheckResult, ...]
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> bool:
        return all(r.passes for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "results": [r.to_dict() for r in self.results],
            "balance": self.balance.reset_index().to_dict(orient="records"),
        }


def sample_ratio_mismatch(
    n_control: float, n_treatment: float, assignment_share: float = 0.5, alpha: float = 0.001
) -> CheckResult:
    """Chi-square test (1 df) of the arm counts against the designed treatment share.

    Parameters
    ----------
    n_control, n_treatment:
        Units per arm.
    assignment_share:
        Designed probability of assignment to treatment.
    alpha:
        The check fails when the p-value is below ``alpha``.
    """
    total = n_control + n_treatment
    expected = np.array([total * (1 - assignment_share), total * assignment_share])
    observed = np.array([n_control, n_treatment], dtype=float)
    stat = float(((observed - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(stat, df=1))
    share = n_treatment / total if total else float("nan")
    passes = bool(p >= alpha)
    detail = (
        f"{int(n_treatment):,} treated vs {int(n_control):,} control "
        f"(treated share {share:.4f}, designed {assignment_share:.4f}); "
        f"chi-square {stat:.2f}, p = {p:.3g} ({'>=' if passes else '<'} {alpha:g})"
    )
    return CheckResult("Sample ratio mismatch", passes, p, alpha, detail, "data")


def covariate_balance(cells: Any) -> pd.DataFrame:
    """Standardized mean differences of covariates between arms, from cell statistics.

    Returns a frame indexed by covariate with ``mean_control``, ``mean_treatment``, ``smd``
    (treatment minus control, in pooled standard deviations).
    """
    ds = cells.ds if hasattr(cells, "ds") else cells
    if ds.sizes.get("covariate", 0) == 0:
        return pd.DataFrame(columns=["mean_control", "mean_treatment", "smd"])
    n = ds["n"].sum("cell")  # (arm,)
    sx = ds["sum_x"].sum("cell")  # (arm, covariate)
    sxx = ds["sum_xx"].sum("cell")
    covs = [str(c) for c in ds["covariate"].values]
    diag = np.stack([np.diagonal(sxx.sel(arm=a).values) for a in ("control", "treatment")], axis=0)
    nn = n.sel(arm=["control", "treatment"]).values[:, None]
    mean = sx.sel(arm=["control", "treatment"]).values / nn
    var = (diag - nn * mean**2) / np.maximum(nn - 1, 1)
    pooled = np.sqrt(np.maximum((var[0] + var[1]) / 2, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        smd = np.where(pooled > 0, (mean[1] - mean[0]) / pooled, 0.0)
    return pd.DataFrame(
        {"mean_control": mean[0], "mean_treatment": mean[1], "smd": smd},
        index=pd.Index(covs, name="covariate"),
    )


def balance_check(balance: pd.DataFrame, max_abs_smd: float = 0.1) -> CheckResult:
    """Fails when any covariate's ``|SMD|`` exceeds ``max_abs_smd``."""
    if balance.empty:
        return CheckResult(
            "Covariate balance", True, 0.0, max_abs_smd, "no covariates to check", "data"
        )
    worst = balance["smd"].abs().idxmax()
    value = float(abs(balance.loc[worst, "smd"]))
    passes = bool(value <= max_abs_smd)
    bad = balance.index[balance["smd"].abs() > max_abs_smd].tolist()
    detail = f"largest |SMD| {value:.3f} ({worst}); threshold {max_abs_smd:g}"
    if bad:
        detail += f"; imbalanced: {', '.join(map(str, bad))}"
    return CheckResult("Covariate balance", passes, value, max_abs_smd, detail, "data")


def diagnostics_checks(
    diagnostics: Mapping[str, Any],
    *,
    max_rhat: float = 1.01,
    min_ess_bulk: float = 400.0,
    max_divergences: int = 0,
) -> list[CheckResult]:
    """Sampler checks from a fit's diagnostics dict (``max_rhat``, ``min_ess_bulk``,
    ``divergences``)."""
    rhat = float(diagnostics.get("max_rhat", np.nan))
    ess = float(diagnostics.get("min_ess_bulk", np.nan))
    div = int(diagnostics.get("divergences", 0) or 0)
    return [
        CheckResult(
            "R-hat",
            bool(np.isfinite(rhat) and rhat <= max_rhat),
            rhat,
            max_rhat,
            f"largest R-hat {rhat:.3f} (must be <= {max_rhat:g})",
            "sampler",
        ),
        CheckResult(
            "Effective sample size",
            bool(np.isfinite(ess) and ess >= min_ess_bulk),
            ess,
            min_ess_bulk,
            f"smallest bulk ESS {ess:.0f} (must be >= {min_ess_bulk:g})",
            "sampler",
        ),
        CheckResult(
            "Divergences",
            bool(div <= max_divergences),
            float(div),
            float(max_divergences),
            f"{div} divergent transitions (at most {max_divergences} allowed)",
            "sampler",
        ),
    ]


def data_checks(
    cells: Any, *, assignment_share: float = 0.5, srm_alpha: float = 0.001, max_abs_smd: float = 0.1
) -> tuple[list[CheckResult], pd.DataFrame]:
    """SRM and covariate-balance checks from cell statistics; returns results and the SMD table."""
    ds = cells.ds if hasattr(cells, "ds") else cells
    n = ds["n"].sum("cell")
    srm = sample_ratio_mismatch(
        float(n.sel(arm="control")), float(n.sel(arm="treatment")), assignment_share, srm_alpha
    )
    balance = covariate_balance(ds)
    return [srm, balance_check(balance, max_abs_smd)], balance


def run_checks(
    cells: Any,
    diagnostics: Mapping[str, Any] | None,
    thresholds: Any = None,
    *,
    assignment_share: float = 0.5,
) -> Checks:
    """All checks of a run. ``thresholds`` is a card's :class:`bayesdecide.card.Checks` (or None
    for the defaults: SRM p >= 0.001, |SMD| <= 0.1, R-hat <= 1.01, bulk ESS >= 400, 0
    divergences)."""
    t = thresholds
    results, balance = data_checks(
        cells,
        assignment_share=assignment_share,
        srm_alpha=getattr(t, "srm_alpha", 0.001),
        max_abs_smd=getattr(t, "max_abs_smd", 0.1),
    )
    if diagnostics is not None:
        results += diagnostics_checks(
            diagnostics,
            max_rhat=getattr(t, "max_rhat", 1.01),
            min_ess_bulk=getattr(t, "min_ess_bulk", 400.0),
            max_divergences=getattr(t, "max_divergences", 0),
        )
    return Checks(tuple(results), balance)


__all__ = [
    "CheckResult",
    "Checks",
    "balance_check",
    "covariate_balance",
    "data_checks",
    "diagnostics_checks",
    "run_checks",
    "sample_ratio_mismatch",
]
