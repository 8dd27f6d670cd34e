"""Command line: ``bayesdecide run CARD``, ``bayesdecide memo RUN --set key=value`` and
``bayesdecide validate CARD``.

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

    v = sub.add_parser(
        "validate",
        help="check a model card (everything that needs only the card) and print what it describes",
    )
    v.add_argument("card", help="path to a model card")
    return p


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
        )
    from bayesdecide.card import parse_assignments
    from bayesdecide.errors import CardError
    from bayesdecide.run import rerender

    if not args.sets:
        raise CardError("give at least one --set key=value (e.g. --set annoyance_penalty=50)")
    return rerender(args.run_folder, parse_assignments(args.sets), out=args.out, progress=progress)


def _dispatch(args: argparse.Namespace, progress: Any) -> int:
    import duckdb

    from bayesdecide.errors import DataValidationError, RunFolderError, SpecError

    try:
        if args.command == "validate":
            return _validate(args.card)
        result = _command(args, progress)
    except KeyboardInterrupt as exc:
        _err(f"interrupted{': ' + str(exc) if str(exc) else ''}; no run folder was written")
        return EXIT_INTERRUPTED
    except DataValidationError as exc:
        return _fail(f"data: {exc}", EXIT_DATA)
    except duckdb.Error as exc:
        return _fail(f"data: DuckDB could not read the data: {exc}", EXIT_DATA)
    except (SpecError, RunFolderError) as exc:  # CardError is a SpecError
        return _fail(str(exc), EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - the CLI reports, never dumps a traceback
        if _is_fit_error(exc):
            return _fail(f"the model could not be fitted: {type(exc).__name__}: {exc}", EXIT_FIT)
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (set BAYESDECIDE_DEBUG=1 for the traceback)",
            EXIT_INTERNAL,
        )
    rec = result.summary.recommendation
    print(result.folder)
    if progress is not None:
        print(f"  memo: {result.memo_html}", file=sys.stderr)
        print(f"  recommendation: {rec.decision}", file=sys.stderr)
    return EXIT_BLOCKED if rec.blocked else EXIT_OK


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
