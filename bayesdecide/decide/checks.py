"""Checks that must pass before a launch is recommended: data quality and sampler health.

- **Sample ratio mismatch (SRM)**: a chi-square goodness-of-fit test of the arm counts against the
  design's assignment shares (1 degree of freedom for two arms, k for k treatment arms and a
  control). A tiny p-value (below ``srm_alpha``, e.g. 0.001) means the split is not what the
  design says: assignment or logging is broken and no effect can be trusted.
- **Covariate balance**: standardized mean differences (SMD) of pre-treatment covariates between
  each treatment arm and the control, ``(mean_T - mean_C) / sqrt((var_T + var_C) / 2)``.
  Randomization makes them small; an ``|SMD|`` above ``max_abs_smd`` (e.g. 0.1) points to a broken
  randomization.
- **Sampler diagnostics**: largest R-hat, smallest bulk ESS and the number of divergences against
  the card's thresholds. Failing diagnostics mean the posterior summaries may be wrong.

Both data checks are computed from the cell statistics (:class:`~bayesdecide.data.CellStats`),
so they cost nothing beyond the one aggregation pass. :func:`evaluate_checks` is the one place a
result is judged against a threshold: a run and a re-render with changed thresholds both call it,
so a check's detail always states the threshold it was judged by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayesdecide.data import CellStats


def _key(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class CheckThresholds:
    """Thresholds of the checks that block a launch recommendation when they fail (the card's
    ``[checks]`` table; these defaults are the one place they are set)."""

    srm_alpha: float = _key(0.001, "sample-ratio-mismatch chi-square p-value floor")
    max_abs_smd: float = _key(0.1, "covariate balance: largest |SMD| allowed, in pooled SDs")
    max_rhat: float = _key(1.01, "largest R-hat allowed")
    min_ess_bulk: float = _key(400.0, "smallest bulk effective sample size allowed (draws)")
    max_divergences: int = _key(0, "divergent transitions allowed")

    def loosened_from(self, before: CheckThresholds) -> list[str]:
        """Thresholds less strict than ``before``, as ``"max_rhat 1.01 -> 5"``."""
        stricter_when_lower = {"max_abs_smd", "max_rhat", "max_divergences"}
        out = []
        for f in fields(self):
            new, old = getattr(self, f.name), getattr(before, f.name)
            looser = new > old if f.name in stricter_when_lower else new < old
            if looser:
                out.append(f"{f.name} {old:g} -> {new:g}")
        return out


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, what was observed, the threshold, and whether it passes."""

    name: str = field(metadata={"doc": "the check, e.g. 'R-hat'"})
    passes: bool = field(metadata={"doc": "whether the observed value is within the threshold"})
    observed: float = field(
        metadata={"doc": "the observed value (p-value, |SMD|, R-hat, ESS, count)"}
    )
    threshold: float = field(metadata={"doc": "the threshold it was judged against"})
    detail: str = field(metadata={"doc": "the result in words, with the threshold used"})
    kind: str = field(default="data", metadata={"doc": "'data' or 'sampler'"})


@dataclass(frozen=True)
class Checks:
    """All checks of a run; ``ok`` is True when every one passes. ``loosened`` lists thresholds a
    re-render made less strict than the run's (``"max_rhat 1.01 -> 5"``): a recommendation that
    rests on them says so."""

    results: tuple[CheckResult, ...]
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)
    loosened: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.passes for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passes]


def sample_ratio_mismatch(
    n_control: float, n_treatment: float, assignment_share: float, alpha: float
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


def sample_ratio_mismatch_arms(
    counts: Mapping[str, float], shares: Mapping[str, float], alpha: float
) -> CheckResult:
    """Chi-square test (k degrees of freedom for k + 1 arms) of the arm counts against the
    designed shares.

    Parameters
    ----------
    counts:
        Units per arm label, control first.
    shares:
        Designed probability of assignment to each arm (same labels; they sum to 1).
    alpha:
        The check fails when the p-value is below ``alpha``.
    """
    labels = list(counts)
    missing = [a for a in labels if a not in shares]
    if missing:
        raise ValueError(f"no designed share for arm(s) {missing}; give a share for every arm")
    observed = np.array([float(counts[a]) for a in labels])
    design = np.array([float(shares[a]) for a in labels])
    total = observed.sum()
    expected = total * design / design.sum()
    stat = float(((observed - expected) ** 2 / expected).sum())
    df = len(labels) - 1
    p = float(stats.chi2.sf(stat, df=df))
    passes = bool(p >= alpha)
    observed_share = observed / total if total else np.full(len(labels), np.nan)
    detail = (
        ", ".join(f"{int(n):,} {a}" for a, n in zip(labels, observed, strict=True))
        + " (shares "
        + "/".join(f"{x:.4f}" for x in observed_share)
        + ", designed "
        + "/".join(f"{x:.4f}" for x in design / design.sum())
        + f"); chi-square {stat:.2f} ({df} df), p = {p:.3g} ({'>=' if passes else '<'} {alpha:g})"
    )
    return CheckResult("Sample ratio mismatch", passes, p, alpha, detail, "data")


def covariate_balance(cells: CellStats) -> pd.DataFrame:
    """Standardized mean differences of covariates between arms, from cell statistics.

    Returns a frame indexed by covariate with ``mean_control``, ``mean_treatment``, ``smd``
    (treatment minus control, in pooled standard deviations). For a multi-arm experiment, one row
    per covariate and treatment arm, the arm in column ``arm`` (each arm against the control).
    """
    ds = cells.ds
    multi = cells.spec.multi_arm
    columns = ["mean_control", "mean_treatment", "smd"]
    if ds.sizes.get("covariate", 0) == 0:
        return pd.DataFrame(columns=["arm", *columns] if multi else columns)
    n = ds["n"].sum("cell")  # (arm,)
    sx = ds["sum_x"].sum("cell")  # (arm, covariate)
    sxx = ds["sum_xx"].sum("cell")
    covs = [str(c) for c in ds["covariate"].values]
    labels = [str(a) for a in ds["arm"].values]
    frames = []
    for arm in labels[1:]:
        pair = [labels[0], arm]
        diag = np.stack([np.diagonal(sxx.sel(arm=a).values) for a in pair], axis=0)
        nn = n.sel(arm=pair).values[:, None]
        mean = sx.sel(arm=pair).values / nn
        var = (diag - nn * mean**2) / np.maximum(nn - 1, 1)
        pooled = np.sqrt(np.maximum((var[0] + var[1]) / 2, 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            smd = np.where(pooled > 0, (mean[1] - mean[0]) / pooled, 0.0)
        frame = pd.DataFrame(
            {"mean_control": mean[0], "mean_treatment": mean[1], "smd": smd},
            index=pd.Index(covs, name="covariate"),
        )
        frames.append(frame.assign(arm=arm)[["arm", *columns]] if multi else frame)
    return pd.concat(frames) if multi else frames[0]


def balance_check(balance: pd.DataFrame, max_abs_smd: float) -> CheckResult:
    """Fails when any covariate's ``|SMD|`` (of any treatment arm) exceeds ``max_abs_smd``."""
    if balance.empty:
        return CheckResult(
            "Covariate balance", True, 0.0, max_abs_smd, "no covariates to check", "data"
        )
    by_arm = "arm" in balance.columns
    names = [
        f"{c}, {a}" if by_arm else str(c)
        for c, a in zip(balance.index, balance["arm"] if by_arm else balance.index, strict=True)
    ]
    smd = balance["smd"].abs().to_numpy(dtype=float)
    worst = int(np.argmax(smd))
    value = float(smd[worst])
    passes = bool(value <= max_abs_smd)
    bad = [name for name, v in zip(names, smd, strict=True) if v > max_abs_smd]
    detail = f"largest |SMD| {value:.3f} ({names[worst]}); threshold {max_abs_smd:g}"
    if bad:
        detail += f"; imbalanced: {', '.join(bad)}"
    return CheckResult("Covariate balance", passes, value, max_abs_smd, detail, "data")


def diagnostics_checks(
    diagnostics: Mapping[str, Any], thresholds: CheckThresholds
) -> list[CheckResult]:
    """Sampler checks from a fit's diagnostics dict (``max_rhat``, ``min_ess_bulk``,
    ``divergences``)."""
    max_rhat = thresholds.max_rhat
    min_ess_bulk = thresholds.min_ess_bulk
    max_divergences = thresholds.max_divergences
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


def evaluate_checks(
    n_control: float,
    n_treatment: float,
    balance: pd.DataFrame,
    diagnostics: Mapping[str, Any] | None,
    thresholds: CheckThresholds,
    *,
    assignment_share: float,
    arm_counts: Mapping[str, float] | None = None,
    arm_shares: Mapping[str, float] | None = None,
) -> Checks:
    """All checks from what they observe: arm counts (units), the covariate balance table
    (:func:`covariate_balance`) and a fit's diagnostics dict (``None``: no sampler checks).

    A multi-arm experiment gives ``arm_counts`` (units per arm, control first) and
    ``arm_shares`` (designed shares, default equal): the sample ratio is then tested over every
    arm and ``n_control``, ``n_treatment`` and ``assignment_share`` are not used."""
    if arm_counts is not None:
        shares = arm_shares or {a: 1.0 / len(arm_counts) for a in arm_counts}
        srm = sample_ratio_mismatch_arms(arm_counts, shares, thresholds.srm_alpha)
    else:
        srm = sample_ratio_mismatch(n_control, n_treatment, assignment_share, thresholds.srm_alpha)
    results = [srm, balance_check(balance, thresholds.max_abs_smd)]
    if diagnostics is not None:
        results += diagnostics_checks(diagnostics, thresholds)
    return Checks(tuple(results), balance)


def run_checks(
    cells: CellStats,
    diagnostics: Mapping[str, Any] | None,
    thresholds: CheckThresholds | None = None,
    *,
    assignment_share: float = 0.5,
    arm_shares: Mapping[str, float] | None = None,
) -> Checks:
    """All checks of a run from its cell statistics and the fit's diagnostics (``None``: data
    checks only). ``thresholds`` default to :class:`CheckThresholds`'s. A multi-arm experiment
    is tested against ``arm_shares`` (designed share per arm label; default equal shares)."""
    n = cells.ds["n"].sum("cell")
    labels = [str(a) for a in cells.ds["arm"].values]
    counts = {a: float(n.sel(arm=a)) for a in labels}
    return evaluate_checks(
        counts[labels[0]],
        float(sum(counts[a] for a in labels[1:])),
        covariate_balance(cells),
        diagnostics,
        thresholds or CheckThresholds(),
        assignment_share=assignment_share,
        arm_counts=counts if cells.spec.multi_arm else None,
        arm_shares=arm_shares,
    )


__all__ = [
    "CheckResult",
    "CheckThresholds",
    "Checks",
    "balance_check",
    "covariate_balance",
    "diagnostics_checks",
    "evaluate_checks",
    "run_checks",
    "sample_ratio_mismatch",
    "sample_ratio_mismatch_arms",
]
