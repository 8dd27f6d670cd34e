"""Readable versions of the calibration tables: formatted columns and Markdown."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pct(x: float) -> str:
    return "" if pd.isna(x) else f"{100 * x:.0f}%"


def _num(x: float, digits: int = 2) -> str:
    return "" if pd.isna(x) else f"{x:,.{digits}f}"


def _flag(x: object) -> str:
    return "pass" if bool(x) else "FAIL"


def format_summary(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """The calibration table (:func:`~bayesdecide.validate.calibration_table`) as strings.

    Coverage in percent; RMSE, widths and biases in the outcome's unit with ``digits`` decimals;
    biases in posterior sds with two decimals; targets as ``pass``/``FAIL``.
    """
    t = table
    out = pd.DataFrame(
        {
            "process": t["process"],
            "outcome": t["outcome"],
            "reps (failed)": [f"{r:.0f} ({f:.0f})" for r, f in zip(t["replications"], t["failed"])],
            "cells": t["cells"].map(lambda x: _num(x, 0)),
            "cell cov 90% [range]": [
                f"{_pct(m)} [{_pct(lo)}-{_pct(hi)}]"
                for m, lo, hi in zip(t["cell_cov90"], t["cell_cov90_min"], t["cell_cov90_max"])
            ],
            "unpooled cell cov 90%": t["raw_cell_cov90"].map(_pct),
            "RMSE pooled / unpooled": [
                f"{_num(a, digits)} / {_num(b, digits)}" for a, b in zip(t["rmse"], t["raw_rmse"])
            ],
            "90% width pooled / unpooled": [
                f"{_num(a, digits)} / {_num(b, digits)}"
                for a, b in zip(t["width90"], t["raw_width90"])
            ],
            "worst level cov 95%": [
                f"{_pct(c)} ({w})" for c, w in zip(t["level_cov95_min"], t["level_cov95_worst"])
            ],
            "worst level bias (sd)": [
                f"{_num(b)} ({w})" for b, w in zip(t["level_bias_sd_max"], t["level_bias_worst"])
            ],
            "all units: truth": t["overall_truth"].map(lambda x: _num(x, digits)),
            "cov 95%": t["overall_cov95"].map(_pct),
            "bias (sd)": [
                f"{_num(b, digits)} ({_num(z)})"
                for b, z in zip(t["overall_bias"], t["overall_bias_sd"])
            ],
            "unpooled cov 95% / bias": [
                f"{_pct(c)} / {_num(b, digits)}"
                for c, b in zip(t["raw_overall_cov95"], t["raw_overall_bias"])
            ],
            "target: cell cov": t["pass_cell_coverage"].map(_flag),
            "level cov": t["pass_level_coverage"].map(_flag),
            "level bias": t["pass_level_bias"].map(_flag),
            "RMSE": t["pass_rmse"].map(_flag),
            "all": t["pass_all"].map(_flag),
            "s per fit": t["fit_seconds"].map(lambda x: _num(x, 1)),
        }
    )
    return out


def format_levels(levels: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """The level table (:func:`~bayesdecide.validate.level_table`, index reset) as strings."""
    lv = levels.reset_index() if "level" not in levels.columns else levels
    cols = [c for c in ("process", "outcome", "factor", "level") if c in lv.columns]
    out = lv[cols].astype(str).copy()
    out["truth"] = lv["truth"].map(lambda x: _num(x, digits))
    out["cov 95%"] = lv["cover95"].map(_pct)
    if "cover95_p" in lv.columns:
        out["p(cov)"] = lv["cover95_p"].map(lambda x: _num(x, 3))
    out["bias"] = lv["bias"].map(lambda x: _num(x, digits))
    if "bias_sd_se" not in lv.columns:
        out["bias (sd)"] = lv["bias_sd"].map(_num)
    else:
        out["bias (sd)"] = [
            f"{_num(b)} ± {_num(e)}" for b, e in zip(lv["bias_sd"], lv["bias_sd_se"])
        ]
    out["post sd"] = lv["post_sd"].map(lambda x: _num(x, digits))
    out["unpooled cov 95%"] = lv["raw_cover95"].map(_pct)
    out["unpooled bias"] = lv["raw_bias"].map(lambda x: _num(x, digits))
    out["unpooled se"] = lv["raw_se"].map(lambda x: _num(x, digits))
    if "oracle_bias_sd" in lv.columns:
        out["oracle cov 95%"] = lv["oracle_cover95"].map(_pct)
        out["oracle bias (sd)"] = lv["oracle_bias_sd"].map(_num)
    out["targets"] = [
        "pass"
        if c and b
        else ("FAIL: " + ", ".join(n for n, ok in (("cov", c), ("bias", b)) if not ok))
        for c, b in zip(lv["pass_coverage"], lv["pass_bias"])
    ]
    return out


def markdown_table(frame: pd.DataFrame, index: bool = False) -> str:
    """``frame`` as a GitHub-flavoured Markdown table (cells as ``str``; ``|`` escaped)."""
    f = frame.reset_index() if index else frame

    def cell(x: object) -> str:
        if isinstance(x, float) and np.isnan(x):
            return ""
        return str(x).replace("|", "\\|").replace("\n", " ")

    header = [cell(c) for c in f.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in f.itertuples(index=False):
        lines.append("| " + " | ".join(cell(x) for x in row) + " |")
    return "\n".join(lines)


__all__ = ["format_levels", "format_summary", "markdown_table"]
