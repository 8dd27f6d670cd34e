"""Decision plots, matplotlib (any backend; the CLI uses Agg), each readable at a glance.

Every function returns a :class:`matplotlib.figure.Figure` and takes plain inputs (DataFrames,
DataArrays of posterior draws, numpy arrays), so it works on a fresh fit or on hand-built numbers:

- :func:`effects_shrinkage` — per-cell raw estimates next to the pooled (hierarchical) posterior;
- :func:`effects_by_factor` — raw and pooled effects per level of each grouping factor;
- :func:`value_posterior` — the launch-value posterior of one policy, P(value > 0) annotated;
- :func:`policy_values` — expected launch value with an 80% interval for every policy;
- :func:`guardrail_probabilities` — rule x policy grid of posterior probabilities, pass/fail;
- :func:`sensitivity_curves` — launch value against an assumption, break-even marked;
- :func:`region_comparison` — heatmap of P(row region's effect > column region's effect);
- :func:`best_arm_probabilities` — multi-arm runs: P(best) of no offer and each arm, stacked, per
  level of each factor and overall.

Money is in dollars at launch scale unless an axis says per customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import LinearSegmentedColormap, ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.heterogeneity import factor_level_effects

RAW = "#9e9e9e"
POOLED = "#1f6fb4"
GOOD = "#2e8b57"
BAD = "#c0392b"
NEUTRAL = "#444444"
HIGHLIGHT = "#e67e22"
SAMPLE_DIMS = ("chain", "draw")

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "legend.frameon": False,
    "text.parse_math": False,  # dollar signs are money, not math
}


def money(x: float, _pos: Any = None) -> str:
    """Dollars, compact: ``$1.2M``, ``-$350k``, ``$42``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a >= 1e9:
        return f"{sign}${a / 1e9:.1f}B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:.2f}M" if a < 1e7 else f"{sign}${a / 1e6:.1f}M"
    if a >= 1e4:
        return f"{sign}${a / 1e3:.0f}k"
    if a >= 1e3:
        return f"{sign}${a / 1e3:.1f}k"
    if a >= 10 or a == 0:
        return f"{sign}${a:.0f}"
    return f"{sign}${a:.2f}"


MONEY = FuncFormatter(money)


def _draws(da: xr.DataArray, sample_dims: Sequence[str] = SAMPLE_DIMS) -> xr.DataArray:
    dims = [d for d in sample_dims if d in da.dims]
    return da.stack(sample=dims) if dims else da


def _interval(x: xr.DataArray, prob: float) -> tuple[xr.DataArray, xr.DataArray]:
    q = x.quantile([(1 - prob) / 2, (1 + prob) / 2], dim="sample")
    return q.isel(quantile=0, drop=True), q.isel(quantile=1, drop=True)


def _is_money(unit: str) -> bool:
    return "dollar" in unit.lower()


def _effect_axis(ax: Any, unit: str, axis: str = "x") -> None:
    if _is_money(unit):
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(FuncFormatter(_per_money))


def _num(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _per_money(x: float, _pos: Any = None) -> str:
    return f"-${abs(x):,.0f}" if x < 0 else f"${x:,.0f}"


# ---------------------------------------------------------------------------------------------
# effects: raw vs pooled
# ---------------------------------------------------------------------------------------------


def raw_and_pooled(
    effects: xr.Dataset,
    tau: xr.DataArray,
    outcome: str,
    *,
    ci_prob: float = DECISION_DEFAULTS["ci_prob"],
    sample_dims: Sequence[str] = SAMPLE_DIMS,
) -> pd.DataFrame:
    """Per-cell table: raw estimate with its normal interval, pooled posterior mean and interval.

    Columns ``raw``, ``raw_lower``, ``raw_upper``, ``pooled``, ``pooled_lower``, ``pooled_upper``,
    ``n`` (units in the cell); indexed by cell label; units of the outcome per assigned customer.
    """
    from scipy.stats import norm

    z = norm.ppf((1 + ci_prob) / 2)
    raw = effects["effect"].sel(outcome=outcome).to_series()
    var = effects["effect_cov"].sel(outcome=outcome, outcome_b=outcome).to_series()
    se = np.sqrt(var)
    draws = _draws(tau.sel(outcome=outcome), sample_dims)
    lo, hi = _interval(draws, ci_prob)
    n = (effects["n_control"] + effects["n_treatment"]).to_series()
    frame = pd.DataFrame(
        {
            "raw": raw,
            "raw_lower": raw - z * se,
            "raw_upper": raw + z * se,
            "pooled": draws.mean("sample").to_series(),
            "pooled_lower": lo.to_series(),
            "pooled_upper": hi.to_series(),
            "n": n,
        }
    )
    frame.index = frame.index.astype(str)
    return frame


def effects_shrinkage(
    effects: xr.Dataset,
    tau: xr.DataArray,
    outcome: str,
    *,
    label: str | None = None,
    unit: str = "",
    ci_prob: float = DECISION_DEFAULTS["ci_prob"],
    max_cells: int = 40,
    sample_dims: Sequence[str] = SAMPLE_DIMS,
) -> Figure:
    """Raw per-cell estimates (grey) next to the pooled posterior (blue): partial pooling at work.

    Up to ``max_cells`` cells: a forest plot sorted by the pooled mean, with ``ci_prob`` intervals.
    More cells: a scatter of raw (x) against pooled (y), point size by cell size; points pulled
    off the diagonal toward the overall mean show the shrinkage.
    """
    t = raw_and_pooled(effects, tau, outcome, ci_prob=ci_prob, sample_dims=sample_dims)
    label = label or outcome
    with plt.rc_context(STYLE):
        if len(t) <= max_cells:
            t = t.sort_values("pooled")
            fig, ax = plt.subplots(figsize=(9, max(3.5, 0.27 * len(t) + 1.5)))
            y = np.arange(len(t))
            ok = t["raw"].notna()
            ax.errorbar(
                t.loc[ok, "raw"],
                y[ok.to_numpy()] + 0.18,
                xerr=[
                    (t["raw"] - t["raw_lower"])[ok],
                    (t["raw_upper"] - t["raw"])[ok],
                ],
                fmt="o",
                mfc="white",
                color=RAW,
                ms=4,
                lw=1,
                label="Raw (this cell's data only)",
            )
            ax.errorbar(
                t["pooled"],
                y - 0.18,
                xerr=[t["pooled"] - t["pooled_lower"], t["pooled_upper"] - t["pooled"]],
                fmt="o",
                color=POOLED,
                ms=5,
                lw=2.2,
                label="Pooled (hierarchical posterior)",
            )
            for i in np.flatnonzero(~ok.to_numpy()):
                ax.annotate(
                    "no treated units: predicted",
                    (t["pooled_upper"].iloc[i], y[i]),
                    xytext=(6, -3),
                    textcoords="offset points",
                    fontsize=8,
                    color=NEUTRAL,
                )
            ax.set_yticks(y, [f"{c}  (n={int(n):,})" for c, n in zip(t.index, t["n"], strict=True)])
            ax.tick_params(axis="y", labelsize=8)
            ax.set_ylim(-0.8, len(t) - 0.2)
            ax.axvline(0, color=NEUTRAL, ls="--", lw=1)
            ax.set_xlabel(
                f"Effect on {label} per assigned customer" + (f" ({unit})" if unit else "")
            )
            _effect_axis(ax, unit)
            lo = np.nanmin([t["raw_lower"].min(), t["pooled_lower"].min()])
            hi = np.nanmax([t["raw_upper"].max(), t["pooled_upper"].max()])
            pad = 0.05 * (hi - lo)
            ax.set_xlim(lo - pad, hi + pad)
            ax.legend(loc="lower right", fontsize=9)
            ax.grid(axis="y", alpha=0)
        else:
            fig, ax = plt.subplots(figsize=(7.5, 6.5))
            ok = t["raw"].notna()
            size = 15 + 150 * (t["n"] / t["n"].max())
            ax.scatter(
                t.loc[ok, "raw"],
                t.loc[ok, "pooled"],
                s=size[ok],
                color=POOLED,
                alpha=0.6,
                edgecolor="white",
                label="cell (size = customers)",
            )
            lo = float(np.nanmin([t["raw"].min(), t["pooled"].min()]))
            hi = float(np.nanmax([t["raw"].max(), t["pooled"].max()]))
            ax.plot([lo, hi], [lo, hi], color=NEUTRAL, ls="--", lw=1, label="no pooling (y = x)")
            w = t.loc[ok, "n"] / t.loc[ok, "n"].sum()
            mean = float((t.loc[ok, "pooled"] * w).sum())
            ax.axhline(mean, color=HIGHLIGHT, lw=1, label="weighted mean effect")
            ax.set_xlabel(f"Raw cell estimate of {label}" + (f" ({unit})" if unit else ""))
            ax.set_ylabel("Pooled posterior mean")
            _effect_axis(ax, unit, "x")
            _effect_axis(ax, unit, "y")
            ax.legend(loc="upper left", fontsize=9)
        ax.set_title(f"{label}: raw vs pooled effects per cell ({ci_prob:.0%} intervals)")
        fig.tight_layout()
    return fig


def effects_by_factor(
    effects: xr.Dataset,
    tau: xr.DataArray,
    outcome: str,
    factors: Sequence[str],
    weights: xr.DataArray | None = None,
    *,
    label: str | None = None,
    unit: str = "",
    ci_prob: float = DECISION_DEFAULTS["ci_prob"],
    sample_dims: Sequence[str] = SAMPLE_DIMS,
) -> Figure:
    """One panel per factor: each level's raw (grey) and pooled (blue) effect with intervals."""
    label = label or outcome
    tables = [
        factor_level_effects(effects, tau, outcome, f, ci_prob, weights, sample_dims)
        for f in factors
    ]
    nrow = max(len(t) for t in tables)
    with plt.rc_context(STYLE):
        ncol = min(len(factors), 2)
        nr = int(np.ceil(len(factors) / ncol))
        fig, axes = plt.subplots(
            nr, ncol, figsize=(6.2 * ncol, max(2.4, 0.45 * nrow + 1.4) * nr), squeeze=False
        )
        for ax, f, t in zip(axes.flat, factors, tables, strict=False):
            t = t.sort_values("mean")
            y = np.arange(len(t))
            ax.errorbar(
                t["raw"],
                y + 0.15,
                xerr=[t["raw"] - t["raw_lower"], t["raw_upper"] - t["raw"]],
                fmt="o",
                mfc="white",
                color=RAW,
                ms=5,
                lw=1.2,
                capsize=3,
                label="Raw",
            )
            ax.errorbar(
                t["mean"],
                y - 0.15,
                xerr=[t["mean"] - t["lower"], t["upper"] - t["mean"]],
                fmt="o",
                color=POOLED,
                ms=6,
                lw=2.4,
                capsize=3,
                label="Pooled posterior",
            )
            ax.set_yticks(
                y,
                [f"{lv}\nP(>0)={p:.0%}" for lv, p in zip(t.index, t["prob_positive"], strict=True)],
            )
            ax.set_ylim(-0.7, len(t) - 0.3)
            ax.axvline(0, color=NEUTRAL, ls="--", lw=1)
            ax.set_title(f"by {f.replace('_', ' ')}")
            ax.set_xlabel(f"{label} effect per assigned customer" + (f"\n({unit})" if unit else ""))
            _effect_axis(ax, unit)
            ax.grid(axis="y", alpha=0)
        for ax in list(axes.flat)[len(factors) :]:
            ax.set_visible(False)
        axes.flat[0].legend(loc="lower right", fontsize=9)
        fig.suptitle(f"{label}: effects by group ({ci_prob:.0%} intervals)", fontweight="bold")
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# value, policies, guardrails
# ---------------------------------------------------------------------------------------------


def value_posterior(
    draws: Any,
    *,
    policy: str = "",
    large_loss: float | None = None,
    title: str | None = None,
) -> Figure:
    """Histogram of launch-value draws (dollars), with 0, the mean, and P(value > 0) annotated."""
    x = np.asarray(draws.values if isinstance(draws, xr.DataArray) else draws, dtype=float).ravel()
    x = x[np.isfinite(x)]
    p_pos = float((x > 0).mean())
    mean = float(x.mean())
    p10, p90 = np.percentile(x, [10, 90])
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        bins = np.histogram_bin_edges(x, bins=60)
        counts, edges, patches = ax.hist(x, bins=bins, color=POOLED, alpha=0.85, edgecolor="white")
        for patch, left in zip(patches, edges[:-1], strict=True):
            if left < 0:
                patch.set_facecolor(BAD)
                patch.set_alpha(0.7)
        ax.axvline(0, color=NEUTRAL, ls="--", lw=1.2)
        ax.axvline(mean, color=HIGHLIGHT, lw=2, label=f"Expected value {money(mean)}")
        ax.axvspan(
            p10, p90, color=POOLED, alpha=0.08, label=f"80% interval {money(p10)} to {money(p90)}"
        )
        if large_loss is not None and x.min() < -large_loss:
            ax.axvline(
                -large_loss, color=BAD, ls=":", lw=1.2, label=f"Large loss ({money(-large_loss)})"
            )
        ax.xaxis.set_major_formatter(MONEY)
        ax.set_xlabel("Launch net value (dollars, after fixed cost)")
        ax.set_ylabel("Posterior draws")
        ax.text(
            0.02,
            0.95,
            f"P(value > 0) = {p_pos:.0%}",
            transform=ax.transAxes,
            fontsize=13,
            fontweight="bold",
            va="top",
            color=GOOD if p_pos >= 0.5 else BAD,
        )
        ax.legend(loc="upper right", fontsize=9)
        ax.set_title(title or f"Launch value posterior{': ' + policy if policy else ''}")
        fig.tight_layout()
    return fig


def policy_values(table: pd.DataFrame, *, recommended: str | None = None) -> Figure:
    """Expected launch value per policy with its 10-90% interval; P(value > 0) on each row.

    ``table``: indexed by policy name with ``expected_value``, ``p10``, ``p90``, ``prob_positive``
    (dollars; probability).
    """
    t = table.sort_values("expected_value")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(9.5, max(3, 0.6 * len(t) + 1.4)))
        y = np.arange(len(t))
        colors = [
            HIGHLIGHT if name == recommended else (GOOD if v > 0 else BAD)
            for name, v in zip(t.index, t["expected_value"], strict=True)
        ]
        ax.barh(y, t["expected_value"], color=colors, alpha=0.8, height=0.6)
        ax.errorbar(
            t["expected_value"],
            y,
            xerr=[t["expected_value"] - t["p10"], t["p90"] - t["expected_value"]],
            fmt="none",
            color=NEUTRAL,
            lw=1.5,
            capsize=4,
        )
        labels = [f"{n}  ★" if n == recommended else str(n) for n in t.index]
        ax.set_yticks(y, labels)
        ax.axvline(0, color=NEUTRAL, lw=1)
        ax.xaxis.set_major_formatter(MONEY)
        span = float(np.nanmax(t["p90"]) - np.nanmin(np.minimum(t["p10"], 0)))
        right = float(np.nanmax(np.maximum(t["p90"], 0)))
        for yi, (p, hi) in enumerate(zip(t["prob_positive"], t["p90"], strict=True)):
            ax.text(max(hi, 0) + 0.02 * span, yi, f"P(>0) {p:.0%}", va="center", fontsize=9)
        ax.set_xlim(right=right + 0.22 * span if span > 0 else None)
        ax.set_xlabel(
            "Launch net value (dollars); bars: expected value, whiskers: 10th-90th percentile"
        )
        ax.set_title("Policy value at launch scale" + ("  (★ recommended)" if recommended else ""))
        ax.grid(axis="y", alpha=0)
        fig.tight_layout()
    return fig


def guardrail_probabilities(rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> Figure:
    """Rule x policy grid: each cell shows the posterior probability, green if the rule passes.

    ``rows``: records with ``rule``, ``policy``, ``probability``, ``passes`` and optionally
    ``required`` (the rule's probability threshold, shown in the row label) and ``comparison``
    (``">="``: the probability must reach it; ``"<="``: a loss probability must stay below it).
    """
    df = pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows)
    rules = list(dict.fromkeys(df["rule"]))
    policies = list(dict.fromkeys(df["policy"]))
    prob = df.pivot_table(index="rule", columns="policy", values="probability", aggfunc="first")
    ok = df.pivot_table(index="rule", columns="policy", values="passes", aggfunc="first")
    prob = prob.reindex(index=rules, columns=policies)
    ok = ok.reindex(index=rules, columns=policies)
    first = df.drop_duplicates("rule").set_index("rule")
    req = first["required"].reindex(rules) if "required" in df else None
    cmp_ = (
        first["comparison"].reindex(rules) if "comparison" in df else pd.Series(">=", index=rules)
    )
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(max(6.5, 1.7 * len(policies) + 3), 0.65 * len(rules) + 2.2))
        code = np.where(ok.isna(), np.nan, ok.astype(float))
        ax.imshow(code, cmap=ListedColormap(["#f4c7c3", "#c8e6c9"]), vmin=0, vmax=1, aspect="auto")
        for i in range(len(rules)):
            for j in range(len(policies)):
                p = prob.iat[i, j]
                if pd.isna(p):
                    continue
                passed = bool(ok.iat[i, j])
                ax.text(
                    j,
                    i,
                    f"{p:.0%}\n{'pass' if passed else 'FAIL'}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color=GOOD if passed else BAD,
                    fontweight="bold",
                )
        ylabels = [
            f"{r}\n(needs {'≤' if cmp_[r] == '<=' else '≥'} {req[r]:.0%})"
            if req is not None and pd.notna(req[r])
            else r
            for r in rules
        ]
        ax.set_yticks(range(len(rules)), ylabels, fontsize=9)
        ax.set_xticks(range(len(policies)), [_wrap(p, 16) for p in policies], fontsize=9)
        ax.xaxis.tick_top()
        ax.set_xticks(np.arange(-0.5, len(policies)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(rules)), minor=True)
        ax.grid(which="minor", color="white", lw=2)
        ax.tick_params(which="minor", length=0)
        for s in ax.spines.values():
            s.set_visible(False)
        ax.set_title("Pre-registered rules: posterior probabilities, pass or fail", pad=12)
        fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> str:
    words, lines, cur = str(text).split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# sensitivity, region comparison
# ---------------------------------------------------------------------------------------------


def sensitivity_curves(
    curves: Mapping[str, pd.DataFrame],
    *,
    break_even: Mapping[str, Mapping[str, float]] | None = None,
    current: Mapping[str, float] | None = None,
    policy: str = "",
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Launch value against each assumption; break-even and the current assumption marked.

    ``curves``: assumption name -> frame indexed by the assumption's value with ``expected_value``
    and optionally ``p10``/``p90`` (dollars). ``break_even``: assumption -> ``{median, lower,
    upper}``. ``current``: assumption -> value used in the decision.
    """
    names = list(curves)
    labels = dict(labels or {})
    ncol = min(2, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrow, ncol, figsize=(6.4 * ncol, 4.9 * nrow), squeeze=False)
        for ax in list(axes.flat)[len(names) :]:
            ax.set_visible(False)
        for ax, name in zip(axes.flat, names, strict=False):
            c = curves[name].sort_index()
            x = np.asarray(c.index, dtype=float)
            if {"p10", "p90"} <= set(c.columns):
                ax.fill_between(
                    x, c["p10"], c["p90"], color=POOLED, alpha=0.15, label="80% interval"
                )
            ax.plot(
                x,
                c["expected_value"],
                color=POOLED,
                lw=2.2,
                marker="o",
                ms=3.5,
                label="Expected value",
            )
            ax.axhline(0, color=NEUTRAL, ls="--", lw=1)
            be = (break_even or {}).get(name)
            if be is not None and be.get("median") is not None and np.isfinite(be["median"]):
                lo, hi = be.get("lower"), be.get("upper")
                if (
                    lo is not None
                    and hi is not None
                    and np.isfinite(lo)
                    and np.isfinite(hi)
                    and lo <= x.max()
                    and hi >= x.min()
                ):
                    ax.plot(
                        [max(lo, x.min()), min(hi, x.max())],
                        [0, 0],
                        color=HIGHLIGHT,
                        lw=6,
                        alpha=0.45,
                        solid_capstyle="butt",
                        label=f"Break-even interval {_num(lo)} to {_num(hi)}",
                    )
                if x.min() <= be["median"] <= x.max():
                    ax.axvline(
                        be["median"],
                        color=HIGHLIGHT,
                        lw=2,
                        label=f"Break-even {_num(be['median'])}",
                    )
                else:
                    ax.set_title(
                        f"Sensitivity to {name.replace('_', ' ')}\n(break-even {_num(be['median'])}"
                        " is outside this range)",
                        fontsize=11,
                    )
            cur = (current or {}).get(name)
            if cur is not None:
                ax.axvline(cur, color=NEUTRAL, ls=":", lw=1.5, label=f"Assumed {cur:g}")
            ax.yaxis.set_major_formatter(MONEY)
            ax.set_xlabel(labels.get(name, name.replace("_", " ")))
            ax.set_ylabel("Launch net value (dollars)")
            if not ax.get_title():
                ax.set_title(f"Sensitivity to {name.replace('_', ' ')}")
            ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)
        if policy:
            fig.suptitle(f"Policy: {policy}", fontsize=10, y=0.99)
        fig.tight_layout()
    return fig


_DIVERGING = LinearSegmentedColormap.from_list("bd_div", [BAD, "#f7f7f7", POOLED])


def region_comparison(prob: pd.DataFrame, *, title: str | None = None, what: str = "") -> Figure:
    """Heatmap of pairwise probabilities ``P(row > column)`` (diagonal blank), annotated.

    ``prob``: square frame, rows and columns the same levels (e.g. regions), values in [0, 1].
    """
    levels = list(prob.index)
    m = prob.reindex(index=levels, columns=levels).to_numpy(dtype=float).copy()
    np.fill_diagonal(m, np.nan)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        size = max(4.8, 1.05 * len(levels) + 2.2)
        fig, ax = plt.subplots(figsize=(size + 1.2, size))
        im = ax.imshow(m, cmap=_DIVERGING, vmin=0, vmax=1)
        for i in range(len(levels)):
            for j in range(len(levels)):
                if i == j:
                    continue
                v = m[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.0%}" if np.isfinite(v) else "",
                    ha="center",
                    va="center",
                    fontsize=10,
                    color="white" if abs(v - 0.5) > 0.35 else "black",
                    fontweight="bold" if abs(v - 0.5) >= 0.45 else "normal",
                )
        ax.set_xticks(range(len(levels)), [_wrap(str(v), 12) for v in levels])
        ax.set_yticks(range(len(levels)), levels)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label("posterior probability")
        ax.set_title(title or f"P(row > column){': ' + what if what else ''}", fontsize=11)
        for s in ax.spines.values():
            s.set_visible(False)
        fig.tight_layout()
    return fig


ARM_COLORS = ("#1f6fb4", "#e67e22", "#2e8b57", "#8e44ad", "#c0392b", "#16a085")
NONE_COLOR = "#bdbdbd"


def best_arm_probabilities(panels: Mapping[str, pd.DataFrame]) -> Figure:
    """Stacked horizontal bars of P(best) per unit: one panel per entry of ``panels``.

    ``panels``: title -> tidy frame with ``unit`` (a level, a cell or ``all``), ``choice``
    (``none`` or an arm) and ``prob_best`` (the unit's choices sum to 1). No offer is grey, the
    arms coloured in their order of appearance; each bar is labelled with its largest choice.
    """
    choices = list(dict.fromkeys(c for t in panels.values() for c in t["choice"]))
    arms = [c for c in choices if c != "none"]
    colors = {
        "none": NONE_COLOR,
        **{a: ARM_COLORS[i % len(ARM_COLORS)] for i, a in enumerate(arms)},
    }
    heights = [t["unit"].nunique() for t in panels.values()]
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(
            len(panels),
            1,
            figsize=(8.5, 0.42 * sum(heights) + 1.1 * len(panels) + 0.6),
            gridspec_kw={"height_ratios": heights},
            squeeze=False,
        )
        for ax, (title, t) in zip(axes[:, 0], panels.items(), strict=True):
            wide = t.pivot_table(index="unit", columns="choice", values="prob_best", sort=False)
            wide = wide.reindex(columns=[c for c in choices if c in wide.columns]).fillna(0.0)
            y = np.arange(len(wide))[::-1]
            left = np.zeros(len(wide))
            for c in wide.columns:
                ax.barh(y, wide[c], left=left, color=colors[c], height=0.62, label=c)
                left += wide[c].to_numpy()
            for yi, (_, row) in zip(y, wide.iterrows(), strict=True):
                top = row.idxmax()
                ax.text(1.01, yi, f"{top} {row[top]:.0%}", va="center", fontsize=9)
            ax.set_yticks(y, [str(u) for u in wide.index])
            ax.set_xlim(0, 1)
            ax.set_title(title, fontsize=11, loc="left")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0%}"))
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        axes[-1, 0].set_xlabel(
            "P(best): posterior probability that the choice has the highest value"
        )
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", ncol=len(labels), fontsize=9)
        fig.tight_layout(rect=(0, 0, 0.9, 0.96))
    return fig


def save(fig: Figure, path: Any) -> None:
    """Save ``fig`` as PNG and close it."""
    fig.savefig(path, format="png", bbox_inches="tight")
    plt.close(fig)


__all__ = [
    "best_arm_probabilities",
    "effects_by_factor",
    "effects_shrinkage",
    "guardrail_probabilities",
    "money",
    "policy_values",
    "raw_and_pooled",
    "region_comparison",
    "save",
    "sensitivity_curves",
    "value_posterior",
]
