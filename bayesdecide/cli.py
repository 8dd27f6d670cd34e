"""Command line: ``bayesdecide run CARD`` and ``bayesdecide memo RUN_FOLDER --set key=value``.

Exit codes: 0 success; 2 usage or model-card error (missing card, unknown/missing key, wrong type,
bad ``--set``); 3 data error (unreadable file, columns or values that do not match the card);
4 the model could not be fitted; 1 anything unexpected. Errors print one message on stderr, no
traceback (set ``BAYESDECIDE_DEBUG=1`` to see it).
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
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_FIT = 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bayesdecide",
        description="Hierarchical Bayesian treatment effects from randomized experiments, turned "
        "into launch decisions.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser(
        "run",
        help="validate, aggregate, fit, decide and write a run folder for a model card",
        description="Run a model card end to end: validate the card and the data, aggregate to "
        "cell statistics, fit the hierarchical model, compute the decision and write a new run "
        "folder (memo.md, memo.html, figures, summary.json, lineage.json, the saved fit).",
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
        "'rules.Primary value.min_prob=0.9' (repeatable)",
    )
    m.add_argument("--out", help="write the re-render as a new folder here instead")
    m.add_argument("--quiet", action="store_true", help="no progress output")

    v = sub.add_parser("validate", help="validate a model card and print what it describes")
    v.add_argument("card", help="path to a model card")
    return p


def _err(msg: str) -> None:
    print(f"bayesdecide: error: {msg}", file=sys.stderr, flush=True)


def _validate(path: str) -> int:
    from bayesdecide.card import load_card

    card = load_card(path)
    spec = card.spec
    print(f"{path}: valid card {card.name} v{card.version} — {card.title}")
    print(f"  data:      {card.data.label}")
    print(f"  treatment: {spec.treatment} (arms {list(spec.arms)})")
    print(f"  outcomes:  {', '.join(f'{o.name} ({o.kind.value})' for o in spec.outcomes)}")
    print(f"  hierarchy: {' x '.join(spec.groups)}")
    print(
        f"  launch:    {card.launch.eligible:,} eligible, ${card.launch.fixed_cost:,.0f} fixed cost"
    )
    print(f"  policies:  {', '.join(p.name for p in card.policies)}")
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


def _dispatch(args: argparse.Namespace, progress: Any) -> int:
    import duckdb

    from bayesdecide.errors import DataValidationError, SpecError

    try:
        if args.command == "validate":
            return _validate(args.card)
        if args.command == "run":
            from bayesdecide.run.pipeline import run_card

            for name in ("draws", "tune", "chains"):
                value = getattr(args, name)
                if value is not None and value < 1:
                    _err(f"--{name} must be a positive integer, not {value}")
                    return EXIT_USAGE
            result = run_card(
                args.card,
                args.out,
                draws=args.draws,
                tune=args.tune,
                chains=args.chains,
                seed=args.seed,
                quick=args.quick,
                progress=progress,
            )
        else:
            from bayesdecide.card import parse_assignments
            from bayesdecide.run.pipeline import rerender

            if not args.sets:
                _err("give at least one --set key=value (e.g. --set annoyance_penalty=50)")
                return EXIT_USAGE
            result = rerender(
                args.run_folder, parse_assignments(args.sets), out=args.out, progress=progress
            )
    except DataValidationError as exc:
        _debug()
        _err(f"data: {exc}")
        return EXIT_DATA
    except duckdb.Error as exc:
        _debug()
        _err(f"data: DuckDB could not read the data: {exc}")
        return EXIT_DATA
    except SpecError as exc:  # CardError is a SpecError
        _debug()
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI reports, never dumps a traceback
        _debug()
        if _is_fit_error(exc):
            _err(f"the model could not be fitted: {type(exc).__name__}: {exc}")
            return EXIT_FIT
        _err(f"unexpected {type(exc).__name__}: {exc} (set BAYESDECIDE_DEBUG=1 for the traceback)")
        return EXIT_UNEXPECTED
    rec = result.summary["recommendation"]
    print(result.folder)
    if progress is not None:
        print(f"  memo: {result.memo_html}", file=sys.stderr)
        print(f"  recommendation: {rec['decision']}", file=sys.stderr)
    return EXIT_OK


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _debug() -> None:
    if os.environ.get("BAYESDECIDE_DEBUG"):
        traceback.print_exc()


def _is_fit_error(exc: Exception) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(
        ("pymc", "pytensor", "nutpie", "bayesdecide.model", "bayesdecide.model.fitting")
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
