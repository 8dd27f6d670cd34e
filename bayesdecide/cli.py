"""Command line: ``bayesdecide run CARD``, ``bayesdecide memo RUN --set key=value``,
``bayesdecide update RUN --data ROLLOUT``, ``bayesdecide validate CARD`` and
``bayesdecide registry list | show RUN | diff RUN_A RUN_B | add RUN``.

Errors print one message on stderr, no traceback (set ``BAYESDECIDE_DEBUG=1`` to see it); the
exit code says what happened (:data:`EXIT_CODES`, also in ``bayesdecide --help`` and the user
guide).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_FIT = 4
EXIT_BLOCKED = 5
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success: the run folder is written and the memo makes a recommendation "
    "(launch, targeted launch or do not launch)",
    EXIT_INTERNAL: "internal error: anything unexpected (a bug; BAYESDECIDE_DEBUG=1 shows the "
    "traceback)",
    EXIT_USAGE: "card or usage error: missing or invalid card, key, --set or flag value, an "
    "--out that is a file, a run folder that is incomplete or damaged",
    EXIT_DATA: "data error: the data file is missing or unreadable, or its columns or values do "
    "not match the card",
    EXIT_FIT: "the model could not be fitted (the sampler failed or returned no usable posterior)",
    EXIT_BLOCKED: "diagnostics block: the run folder is written, but a data check or sampler "
    "diagnostic failed, so the memo makes no launch recommendation",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): nothing that looks like a complete run is left behind",
}


def exit_code_table() -> str:
    """The exit codes as lines ``  N  meaning``."""
    return "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bayesdecide",
        description="Hierarchical Bayesian treatment effects from randomized experiments, turned "
        "into launch decisions.",
        epilog="exit codes:\n" + exit_code_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser(
        "run",
        help="validate, aggregate, fit, decide and write a run folder for a model card",
        description="Run a model card end to end: validate the card and the data, aggregate to "
        "cell statistics, fit the hierarchical model, compute the decision and write a new run "
        "folder (memo.md, memo.html, figures, summary.json, lineage.json, the saved fit). The "
        "folder appears only when complete.",
    )
    r.add_argument("card", help="path to a model card, e.g. models/retention_outreach.toml")
    r.add_argument("--out", default="runs", help="parent folder of run folders (default: runs/)")
    r.add_argument("--draws", type=int, help="posterior draws per chain (overrides the card)")
    r.add_argument("--tune", type=int, help="tuning steps per chain (overrides the card)")
    r.add_argument("--chains", type=int, help="number of chains (overrides the card)")
    r.add_argument("--seed", type=int, help="sampler seed (overrides the card)")
    r.add_argument(
        "--quick", action="store_true", help="quick look: 2 chains x 300 draws, 300 tuning steps"
    )
    r.add_argument("--quiet", action="store_true", help="no progress output")
    _registry_flags(r, "the card's [registry].path, else <out>/registry.duckdb")

    m = sub.add_parser(
        "memo",
        help="re-render a run's decision and memo with changed assumptions (no refit)",
        description="Re-render the decision and memo of a saved run with changed assumptions "
        "(costs, weights, launch size or mix, rules, checks), from the saved fit. Writes "
        "RUN_FOLDER/rerenders/<timestamp>/ and never overwrites anything.",
    )
    m.add_argument("run_folder", help="a folder written by `bayesdecide run`")
    m.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change an assumption: annoyance_penalty=50, fixed_cost=350000, "
        "transport_multiplier=0.8, launch.eligible=150000, value.weights.support_tickets=-25, "
        "'rules.Primary value.min_prob=0.9', checks.max_rhat=1.05 (repeatable)",
    )
    m.add_argument("--out", help="write the re-render as a new folder here instead")
    m.add_argument("--quiet", action="store_true", help="no progress output")
    _registry_flags(m, "the run's registry (its card's [registry].path, else next to the run)")

    u = sub.add_parser(
        "update",
        help="refit a run with its rollout's randomized holdout and re-decide (post-launch update)",
        description="Read the rollout's data (treated customers and the randomized holdout, the "
        "card's columns), add it to the run's fit as a new level of the experiment factor, refit, "
        "and write a new run folder: the posterior transport multiplier (the rollout's effect on "
        "the card's benefit outcomes over the experiment's, same cells and mix), the decision "
        "re-made with it draw by draw, the change from the earlier decision, and the monitoring "
        "plan's stop rules evaluated on the rollout.",
    )
    u.add_argument("run_folder", help="a folder written by `bayesdecide run` (or `update`)")
    u.add_argument(
        "--data", required=True, help="the rollout's rows: Parquet/CSV file, folder or glob"
    )
    u.add_argument(
        "--label",
        help="the rollout's level of the experiment factor (default: rollout, or rollout-2 ... "
        "after earlier updates)",
    )
    u.add_argument("--out", help="parent folder of the new run folder (default: the run's)")
    u.add_argument("--draws", type=int, help="posterior draws per chain (default: the run's)")
    u.add_argument("--tune", type=int, help="tuning steps per chain (default: the run's)")
    u.add_argument("--chains", type=int, help="number of chains (default: the run's)")
    u.add_argument("--seed", type=int, help="sampler seed (default: the run's)")
    u.add_argument("--quiet", action="store_true", help="no progress output")
    _registry_flags(u, "the run's registry (its card's [registry].path, else next to the run)")

    v = sub.add_parser(
        "validate",
        help="check a model card (everything that needs only the card) and print what it describes",
    )
    v.add_argument("card", help="path to a model card")
    v.add_argument(
        "--by",
        metavar="FACTOR",
        help="also cross-validate by level: refit leaving each level of FACTOR out (e.g. "
        "region) and report, per held-out level, its predictive interval, whether its own "
        "estimate fell inside, the width and the PIT (loads the data and fits once per level)",
    )
    v.add_argument("--quick", action="store_true", help="with --by: 2 chains x 300 draws per refit")
    v.add_argument("--quiet", action="store_true", help="with --by: no progress output")

    c = sub.add_parser(
        "compile",
        help="compile the model's kernels now (once per installation) instead of in the first fit",
        description="Compile the numba kernels every fit calls (the sampler's density, the draws "
        "of the effects, the diagnostics: the same for every model) into numba's on-disk cache, "
        "by fitting a small model; 25-45 s on 2 cores the first time, under 3 s when they are "
        "cached. The project's set-up (make) runs it after installing.",
    )
    c.add_argument("--quiet", action="store_true", help="print nothing")

    g = sub.add_parser(
        "registry",
        help="list, show, compare and add runs of the run registry",
        description="The run registry records every run, re-render (memo) and update: card, "
        "data and spec fingerprints, model, diagnostics, decision and parent run. It is a DuckDB "
        "file, runs/registry.duckdb by default.",
    )
    gsub = g.add_subparsers(dest="registry_command", metavar="ACTION")
    gsub.required = True
    gl = gsub.add_parser("list", help="one line per run, newest first")
    gl.add_argument("--card", help="only runs of this card name")
    gl.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    gs = gsub.add_parser("show", help="everything recorded about one run")
    gs.add_argument("run", help="run id, a unique prefix of one, or the run folder")
    gd = gsub.add_parser("diff", help="what differs between two runs")
    gd.add_argument("run_a", help="run id (or prefix, or folder)")
    gd.add_argument("run_b", help="run id (or prefix, or folder)")
    ga = gsub.add_parser("add", help="register a run folder (e.g. one whose registration failed)")
    ga.add_argument("run_folder", help="a run, re-render or update folder")
    for q in (gl, gs, gd):
        q.add_argument(
            "--registry",
            default="runs/registry.duckdb",
            help="registry file (default: runs/registry.duckdb)",
        )
    ga.add_argument(
        "--registry",
        help="registry file (default: the registry next to the run folder)",
    )
    return p


def _registry_flags(parser: argparse.ArgumentParser, default: str) -> None:
    grp = parser.add_mutually_exclusive_group()
    grp.add_argument(
        "--registry", help=f"record the run in this registry file (default: {default})"
    )
    grp.add_argument(
        "--no-registry", action="store_true", help="do not record the run in any registry"
    )


def _registry_arg(args: argparse.Namespace) -> Any:
    if getattr(args, "no_registry", False):
        return False
    return getattr(args, "registry", None)


def _err(msg: str) -> None:
    print(f"bayesdecide: error: {msg}", file=sys.stderr, flush=True)


def _validate(path: str) -> int:
    from bayesdecide.card import load_card

    card = load_card(path)
    spec, launch, fit = card.spec, card.launch, card.fit_settings()
    print(f"{path}: valid card {card.name} v{card.version} — {card.title}")
    print(f"  data:      {card.data.label}")
    print(f"  treatment: {spec.treatment} (arms {list(spec.arms)})")
    print(f"  outcomes:  {', '.join(f'{o.name} ({o.kind.value})' for o in spec.outcomes)}")
    print(f"  hierarchy: {' x '.join(spec.groups)}")
    print(f"  fit:       {fit['chains']} chains x {fit['draws']} draws, seed {fit['seed']}")
    print(f"  launch:    {launch.eligible:,} eligible, ${launch.fixed_cost:,.0f} fixed cost")
    print(f"  policies:  {', '.join(p.label for p in card.decision_policies())}")
    print(f"  rules:     {', '.join(r.name for r in card.rules)}")
    if card.pooled:
        print(
            f"  pooled:    {card.experiment_factor} = {', '.join(card.experiments)}; the decision "
            f"is about {card.target_experiment!r}"
        )
    if card.monitoring.rules:
        print(
            f"  stop:      {', '.join(r.name for r in card.monitoring.rules)} (checked by update)"
        )
    if card.registry_path is not None:
        print(f"  registry:  {card.registry_path}")
    return EXIT_OK


def _cross_validate(path: str, factor: str, quick: bool, progress: Any) -> int:
    """``validate CARD --by FACTOR``: cross-validation by level of the card's primary outcome."""
    from bayesdecide.card import load_card
    from bayesdecide.errors import SpecError
    from bayesdecide.validate import PIT_BOUNDS, cross_validate_levels

    card = load_card(path)
    if factor not in card.factors:
        raise SpecError(
            f"--by {factor!r}: cross-validation holds out levels of a factor the card pools over "
            f"(hierarchy.factors = {card.factors})"
        )
    table = card.effects()
    result = cross_validate_levels(
        table,
        factor,
        lambda t: card.fit(t, quick=quick, progressbar=False),
        outcomes=card.checked_outcomes,
        progress=progress,
    )
    prob = result.attrs["prob"]
    print(
        f"cross-validation by {factor} ({len(set(result['level']))} levels; {prob:.0%} predictive intervals):"
    )
    print(
        f"  {'level':20s} {'outcome':18s} {'estimate':>10s} {'interval':>24s} {'covered':>8s} {'PIT':>6s}"
    )
    for _, r in result.iterrows():
        flag = "  <- surprising" if r["surprising"] else ""
        print(
            f"  {r['level']:20s} {r['outcome']:18s} {r['estimate']:10.4g} "
            f"[{r['lower']:10.4g}, {r['upper']:10.4g}] {str(r['covered']):>8s} {r['pit']:6.3f}{flag}"
        )
    bad = result[result["surprising"]]
    if len(bad):
        print(
            f"warning: {len(bad)} held-out level x outcome(s) outside PIT {list(PIT_BOUNDS)}: the "
            "hierarchy would have mispredicted them; check those levels before pooling them"
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesdecide`` command; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    progress = None if getattr(args, "quiet", False) else _progress
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = _dispatch(args, progress)
    if progress is not None:
        seen: set[str] = set()
        for w in caught:
            first = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
            if first and first not in seen and not issubclass(w.category, DeprecationWarning):
                seen.add(first)
                print(f"note: {first}", file=sys.stderr)
    return code


def _command(args: argparse.Namespace, progress: Any) -> Any:
    if args.command == "run":
        from bayesdecide.run import run_card

        return run_card(
            args.card,
            args.out,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
            quick=args.quick,
            progress=progress,
            registry=_registry_arg(args),
        )
    if args.command == "update":
        from bayesdecide.run.updating import update_run

        return update_run(
            args.run_folder,
            args.data,
            label=args.label,
            out=args.out,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
            progress=progress,
            registry=_registry_arg(args),
        )
    from bayesdecide.card import parse_assignments
    from bayesdecide.errors import CardError
    from bayesdecide.run import rerender

    if not args.sets:
        raise CardError("give at least one --set key=value (e.g. --set annoyance_penalty=50)")
    return rerender(
        args.run_folder,
        parse_assignments(args.sets),
        out=args.out,
        progress=progress,
        registry=_registry_arg(args),
    )


def _dispatch(args: argparse.Namespace, progress: Any) -> int:
    import duckdb

    from bayesdecide.errors import DataValidationError, RegistryError, RunFolderError, SpecError

    try:
        if args.command == "validate":
            code = _validate(args.card)
            if args.by:
                return _cross_validate(args.card, args.by, args.quick, progress)
            return code
        if args.command == "registry":
            return _registry_command(args)
        if args.command == "compile":
            from bayesdecide.model.precompile import compile_kernels

            ready = compile_kernels()
            if progress is not None:
                print(f"bayesdecide: {ready}")
            return EXIT_OK
        result = _command(args, progress)
    except KeyboardInterrupt as exc:
        # the guard's text already starts with "interrupted while ..."
        said = str(exc) or "interrupted"
        _err(f"{said}; no run folder was written")
        return EXIT_INTERRUPTED
    except DataValidationError as exc:
        return _fail(f"data: {exc}", EXIT_DATA)
    except duckdb.Error as exc:
        return _fail(f"data: DuckDB could not read the data: {exc}", EXIT_DATA)
    except (SpecError, RunFolderError, RegistryError) as exc:  # CardError is a SpecError
        return _fail(str(exc), EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - the CLI reports, never dumps a traceback
        if _is_fit_error(exc):
            return _fail(f"the model could not be fitted: {type(exc).__name__}: {exc}", EXIT_FIT)
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (set BAYESDECIDE_DEBUG=1 for the traceback)",
            EXIT_INTERNAL,
        )
    except BaseException as exc:  # noqa: BLE001 - a sampler panic (Rust) is a BaseException
        if type(exc).__name__ != "PanicException":
            raise
        return _fail(f"the model could not be fitted: the sampler panicked: {exc}", EXIT_FIT)
    rec = result.summary.recommendation
    print(result.folder)
    if progress is not None:
        print(f"  memo: {result.memo_html}", file=sys.stderr)
        print(f"  recommendation: {rec.decision}", file=sys.stderr)
        if result.record is not None:
            print(f"  registered: {result.record.run_id}", file=sys.stderr)
    return EXIT_BLOCKED if rec.blocked else EXIT_OK


def _registry_command(args: argparse.Namespace) -> int:
    from bayesdecide.run.registry import (
        REGISTRY_FILE,
        diff_records,
        open_registry,
        register_folder,
    )

    action = args.registry_command
    if action == "add":
        from pathlib import Path

        folder = Path(args.run_folder).resolve()
        top = folder.parent.parent if folder.parent.name == "rerenders" else folder
        location = args.registry or top.parent / REGISTRY_FILE
        record = register_folder(folder, location)
        print(f"registered {record.run_id} ({record.kind}) in {location}")
        return EXIT_OK
    reg = open_registry(args.registry)
    if action == "list":
        print(_registry_listing(reg.table(), args.card, args.limit))
    elif action == "show":
        print(_registry_show(reg.get(args.run)))
    else:
        a, b = reg.get(args.run_a), reg.get(args.run_b)
        print(_registry_diff(diff_records(a, b), a.run_id, b.run_id))
    return EXIT_OK


def _money(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "n/a"
    if x != x:
        return "n/a"
    return f"-${abs(x):,.0f}" if x < 0 else f"${x:,.0f}"


def _registry_listing(table: Any, card: str | None, limit: int) -> str:
    if card is not None:
        table = table[table["card_name"] == card]
    if table.empty:
        return "no runs registered" + (f" for card {card!r}" if card else "")
    rows = []
    for run_id, r in table.head(max(limit, 1)).iterrows():
        ok = "ok" if r["checks_ok"] else "FAILED"
        folder = "" if r["folder_exists"] else "  [folder missing]"
        parent = f" <- {r['parent_run']}" if isinstance(r["parent_run"], str) else ""
        policy = next((x for x in (r["policy_label"], r["policy"]) if isinstance(x, str)), "-")
        p = r["prob_positive"]
        prob = f"{p:.0%}" if p == p and p is not None else "n/a"
        rows.append(
            f"{run_id}  {r['kind']:<6} {r['card_name']} v{r['card_version']}  "
            f"{r['decision']}: {policy}  E[value] {_money(r['expected_value'])}  "
            f"P(value>0) {prob}  checks {ok}{parent}{folder}"
        )
    more = len(table) - len(rows)
    return "\n".join(rows + ([f"... {more} more (--limit)"] if more > 0 else []))


def _registry_show(record: Any) -> str:
    import dataclasses
    import json
    from pathlib import Path

    lines = []
    for f in dataclasses.fields(record):
        v = getattr(record, f.name)
        if isinstance(v, dict | list):
            v = json.dumps(v, sort_keys=True) if v else "-"
        lines.append(f"{f.name:>16}: {v}")
    if not Path(record.folder).is_dir():
        lines.append(
            f"note: the run folder {record.folder} no longer exists (deleted or moved by hand); "
            "the registry keeps its record"
        )
    return "\n".join(lines)


def _registry_diff(frame: Any, a: str, b: str) -> str:
    if frame.empty:
        return f"{a} and {b} do not differ (besides id, folder, time and command)"
    head = f"{'field':<32} {a:<34} {b:<34} change"
    lines = [head, "-" * len(head)]
    for r in frame.itertuples():
        change = "" if r.change is None or r.change != r.change else f"{r.change:+,.4g}"
        lines.append(f"{r.field:<32} {_cell(r.a):<34} {_cell(r.b):<34} {change}")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    text = "-" if v is None else (f"{v:,.4g}" if isinstance(v, float) else str(v))
    return text if len(text) <= 34 else text[:31] + "..."


def _fail(msg: str, code: int) -> int:
    if os.environ.get("BAYESDECIDE_DEBUG"):
        traceback.print_exc()
    _err(msg)
    return code


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _is_fit_error(exc: Exception) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("pymc", "pytensor", "nutpie", "bayesdecide.model"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
