"""``monitor runs``: compare recorded evaluation runs, export the best run's configuration.

``monitor runs list`` prints the runs of an experiment, best first; ``monitor runs best``
prints the best one and, with ``--export PATH``, writes its configuration as a YAML file
that ``monitor run --config PATH`` accepts. MLflow is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.config import ConfigError
from monitor.evaluation import tracking
from monitor.evaluation.tracking import (
    DEFAULT_EXPERIMENT,
    DEFAULT_METRIC,
    KEY_METRICS,
    RunSummary,
    TrackingError,
)

DEFAULT_LIMIT = 20


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri`` and ``--experiment``, as ``monitor evaluate`` and ``runs`` take them."""
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI: file:PATH, http(s)://server (default: $MLFLOW_TRACKING_URI, "
        "else the local store ./mlruns)",
    )
    parser.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        metavar="NAME",
        help=f"MLflow experiment (default: {DEFAULT_EXPERIMENT})",
    )


def add_runs_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``runs`` (with ``list`` and ``best``) to an argparse subparsers object."""
    runs = subparsers.add_parser(
        "runs",
        help="compare recorded evaluation runs, export the best configuration",
        description="Compare the evaluation runs recorded by `monitor evaluate` (MLflow) "
        "and export the best run's configuration.",
    )
    runs.set_defaults(handler=lambda _args: _usage(runs))
    commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND")

    def common(parser: argparse.ArgumentParser) -> None:
        add_tracking_arguments(parser)
        parser.add_argument(
            "--metric",
            default=DEFAULT_METRIC,
            metavar="NAME",
            help=f"metric to rank runs by (default: {DEFAULT_METRIC}); higher is better "
            "except for false alerts, delays and runtime",
        )
        order = parser.add_mutually_exclusive_group()
        order.add_argument(
            "--lower-is-better",
            dest="ascending",
            action="store_true",
            default=None,
            help="rank smaller values first",
        )
        order.add_argument(
            "--higher-is-better",
            dest="ascending",
            action="store_false",
            help="rank larger values first",
        )

    listing = commands.add_parser(
        "list", help="list runs, best first", description="List runs, best first."
    )
    common(listing)
    listing.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N runs, 0 for all (default: {DEFAULT_LIMIT})",
    )
    listing.set_defaults(handler=_list)

    best = commands.add_parser(
        "best",
        help="show the best run; with --export, write its configuration",
        description="Show the best finished run; with --export, write its configuration "
        "(validated, with a header naming the run) to a YAML file.",
    )
    common(best)
    best.add_argument(
        "--export",
        type=Path,
        metavar="PATH",
        help="write the best run's configuration here (e.g. configs/best.yaml)",
    )
    best.set_defaults(handler=_best)
    return runs


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _list(args: argparse.Namespace) -> int:
    try:
        runs = tracking.list_runs(
            args.tracking_uri, args.experiment, args.metric, ascending=args.ascending
        )
    except TrackingError as err:
        print(f"monitor runs list: {err}", file=sys.stderr)
        return 1
    uri = tracking.resolve_tracking_uri(args.tracking_uri)
    print(f"experiment {args.experiment!r} at {uri}: {len(runs)} run(s), ranked by {args.metric}")
    print(format_runs(runs, args.limit or None))
    return 0


def _best(args: argparse.Namespace) -> int:
    try:
        best = tracking.best_run(
            args.tracking_uri, args.experiment, args.metric, ascending=args.ascending
        )
        print(format_runs([best]))
        if args.export is not None:
            path = tracking.export_best_config(
                args.tracking_uri,
                args.experiment,
                args.metric,
                args.export,
                ascending=args.ascending,
            )
            print(f"wrote the configuration of run {best.run_id} to {path}")
    except TrackingError as err:
        print(f"monitor runs best: {err}", file=sys.stderr)
        return 1
    except ConfigError as err:
        print(
            f"monitor runs best: the best run's configuration is not valid:\n{err}", file=sys.stderr
        )
        return 1
    return 0


def format_runs(runs: Sequence[RunSummary], limit: int | None = None) -> str:
    """A readable table of runs in the order given: rank, id, name, start, metrics, code."""
    shown = list(runs[:limit] if limit else runs)
    if not shown:
        return "no runs"
    metric = shown[0].metric
    others = [k for k in KEY_METRICS if k != metric]
    headers = ["#", "run id", "name", "started (UTC)", "status", metric, *others, "code"]
    rows = [
        [
            str(rank),
            run.run_id[:12],
            run.name[:28],
            f"{run.start_time:%Y-%m-%d %H:%M}",
            run.status,
            _number(run.value),
            *(_number(run.key_metrics.get(k)) for k in others),
            run.code_version or "-",
        ]
        for rank, run in enumerate(shown, 1)
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = {0, *range(5, 6 + len(others))}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    if limit and len(runs) > limit:
        out.append(f"... {len(runs) - limit} more (--limit 0 shows all)")
    return "\n".join(out)


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3f}"
