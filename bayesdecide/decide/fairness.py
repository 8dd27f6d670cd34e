"""Fairness across groups: effects and treated shares by the levels of a factor, and the groups each
policy leaves out, with the reason.

Estimands, for level ``l`` of a factor with launch mix ``mix[c]`` and level share
``M_l = sum_{c in l} mix[c]`` (:meth:`bayesdecide.decide.evaluate.PolicyDraws.level_draws`):

* **effect of a policy in a level**: the average effect per eligible customer of the level at
  launch, untreated customers counting 0: ``sum_{c in l} mix[c] treat[c] x[c] / M_l``, for ``x``
  net value per customer (dollars, benefits transported) or one outcome's effect (its unit; ITT
  per assigned customer). Under treat-all it is the level's average effect if everyone in it is
  treated.
* **treated share** of a level: ``sum_{c in l} mix[c] treat[c] / M_l``, the share of the level's
  eligible customers the policy treats.

A policy **leaves out** a level when it treats nobody in it. The reason (:func:`left_out`):

* a named policy: its rule over the group labels (or its list of cells) excludes the level;
* a searched policy (the optimal targeting): ``"value"`` when no cell of the level has a positive
  posterior mean net value (with several arms: under any arm), or adding the level's
  positive-value cells (each with its best arm) lowers the expected launch value; ``"rule"`` when adding them breaks a rule the policy is held to (named, with its
  probability and worst level); ``"search"`` when adding them would pass every rule and add value
  (the heuristic search missed it; say so rather than guess).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayesdecide.decide._draws import summarize, usd_text
from bayesdecide.decide.evaluate import LaunchDraws
from bayesdecide.decide.guardrails import Guardrail, guardrail_table, result_text
from bayesdecide.decide.policies import TREAT_NONE, Policy

EFFECT_COLUMNS = [
    "factor",
    "level",
    "policy",
    "outcome",
    "share",
    "treated_share",
    "mean",
    "sd",
    "lower",
    "upper",
    "prob_positive",
]
LEFT_OUT_COLUMNS = ["policy", "factor", "level", "share", "cause", "reason", "rules"]


def group_effects(
    launch: LaunchDraws,
    masks: np.ndarray,
    names: Sequence[str],
    factor: str,
    outcomes: Sequence[str | None] = (None,),
    ci_prob: float = 0.95,
) -> pd.DataFrame:
    """Effect per eligible customer of each level under each policy (module docstring).

    Returns a tidy frame, one row per level x policy x quantity: ``factor``, ``level``,
    ``policy``, ``outcome`` (``None``: net value per customer, dollars), ``share`` (the level's
    share of the launch population), ``treated_share`` (share of the level's customers treated),
    ``mean``, ``sd``, ``lower``, ``upper`` (equal-tailed ``ci_prob`` interval) and
    ``prob_positive`` (P(effect > 0)).
    """
    pd_ = launch.evaluate(masks, list(names))
    rows = []
    for outcome in outcomes:
        ld = pd_.level_draws(factor, outcome, per="eligible")
        s_, p_, l_ = ld.draws.shape
        flat = ld.draws.reshape(s_, p_ * l_)
        held = ~np.isnan(flat[0])
        stats = summarize(np.where(held, flat, 0.0), ci_prob)
        pos = (np.where(held, flat, 0.0) > 0).mean(axis=0)
        for i, name in enumerate(names):
            for j, level in enumerate(ld.levels):
                k = i * l_ + j
                nan = not held[k]
                rows.append(
                    {
                        "factor": factor,
                        "level": str(level),
                        "policy": name,
                        "outcome": outcome,
                        "share": float(ld.share[j]),
                        "treated_share": float(ld.treated[i, j]),
                        **{
                            key: np.nan if nan else float(stats[key][k])
                            for key in ("mean", "sd", "lower", "upper")
                        },
                        "prob_positive": np.nan if nan else float(pos[k]),
                    }
                )
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def rule_text(rule: Mapping[str, Mapping[str, Sequence]]) -> str:
    """A policy rule in words: ``risk_band in [Medium risk, High risk]; region not in [APAC]``."""
    parts = []
    for factor, cond in rule.items():
        for op, levels in cond.items():
            word = "in" if op == "in" else "not in"
            parts.append(f"{factor.replace('_', ' ')} {word} [{', '.join(map(str, levels))}]")
    return "; ".join(parts) or "everyone"


def _named_reason(policy: Policy, factor: str, level: str) -> str:
    if policy.cells is not None:
        return f"its list of cells has no {factor.replace('_', ' ')} {level} cell"
    assert policy.rule is not None
    return f"its rule ({rule_text(policy.rule)}) treats no {factor.replace('_', ' ')} {level} cell"


def left_out(
    launch: LaunchDraws,
    masks: np.ndarray,
    names: Sequence[str],
    factor: str,
    named: Mapping[str, Policy],
    rules: Mapping[str, Sequence[Guardrail]],
) -> pd.DataFrame:
    """The levels of ``factor`` each policy leaves out (treats nobody in), and why.

    Parameters
    ----------
    launch, masks, names:
        The draws and the policies as 0/1 masks ``(P, C)`` with their ids.
    factor:
        The grouping factor.
    named:
        Policy id -> :class:`Policy` for the policies defined by a rule or a cell list; the
        others (the optimal targeting) were searched, and their reasons are computed.
    rules:
        Policy id -> the rules a searched policy is held to.

    Returns
    -------
    pandas.DataFrame
        ``policy``, ``factor``, ``level``, ``share`` (the level's launch share), ``cause``
        (``policy``, ``value``, ``rule`` or ``search``; module docstring), ``reason`` (a sentence
        fragment: "<policy> leaves out <level>: <reason>") and ``rules`` (the rules that exclude
        it, for ``cause="rule"``). Treat-none leaves everyone out by definition and is skipped.
    """
    levels, codes = launch.level_codes(factor)
    mix = launch.mix
    rows = []
    for i, name in enumerate(names):
        if name == TREAT_NONE:
            continue
        mask = masks[i]
        for j, level in enumerate(levels):
            cells = codes == j  # the level's options
            share = float(launch.level_weight[cells].sum())
            if share <= 0 or (mask[cells] * mix[cells]).sum() > 0:
                continue
            row = {"policy": name, "factor": factor, "level": str(level), "share": share}
            if name in named:
                rows.append(
                    {**row, "cause": "policy", "reason": _named_reason(named[name], factor, level)}
                )
                continue
            rows.append({**row, **_searched_reason(launch, mask, cells, rules.get(name, ()))})
    out = pd.DataFrame(rows, columns=LEFT_OUT_COLUMNS)
    out["rules"] = [r if isinstance(r, list) else [] for r in out["rules"]]
    return out


def _searched_reason(
    launch: LaunchDraws, mask: np.ndarray, cells: np.ndarray, rules: Sequence[Guardrail]
) -> dict:
    mix, m = launch.mix, launch.mean_value
    # each of the level's cells with its best option (its arm of highest expected value)
    blocks = np.where(cells, m, -np.inf).reshape(-1, launch.n_arms)
    best = np.zeros(len(m), dtype=bool)
    rows = np.flatnonzero(np.isfinite(blocks).any(axis=1))
    best[rows * launch.n_arms + blocks[rows].argmax(axis=1)] = True
    positive = best & (m > 0)
    if not positive.any():
        v_all = float((mix[best] * m[best]).sum() / mix[best].sum())
        dollars = f"-${abs(v_all):,.2f}" if v_all < 0 else f"${v_all:,.2f}"
        return {
            "cause": "value",
            "reason": "none of its cells has a positive expected net value (treating all of it: "
            f"{dollars} per customer)",
        }
    added = np.maximum(mask, positive.astype(float))
    n = int(positive.sum())
    what = f"treating its {n} cell{'s' if n > 1 else ''} with positive expected net value"
    if launch.arms is not None:
        what += " (each with its best arm)"
    if rules:
        table = guardrail_table(rules, launch.evaluate(added[None], ["added"]))
        failed = table[~table["passes"]]
        if len(failed):
            texts = [
                result_text(
                    r["rule"],
                    r["probability"],
                    r["threshold"],
                    r["comparison"],
                    r["factor"],
                    r["worst_level"],
                )
                for r in failed.to_dict("records")
            ]
            return {
                "cause": "rule",
                "reason": f"{what} would fail " + "; ".join(texts),
                "rules": [str(r) for r in failed["rule"]],
            }
    gain = float(np.diff(launch.expected_values(np.stack([mask, added])))[0])
    if gain <= 0:
        return {
            "cause": "value",
            "reason": f"{what} would change the expected launch value by {usd_text(gain)} "
            "(their value does not cover the fixed cost they add)",
        }
    return {
        "cause": "search",
        "reason": f"{what} passes every rule and adds {usd_text(gain)} in expectation; the "
        "heuristic search did not find it",
    }


__all__ = ["group_effects", "left_out", "rule_text"]
