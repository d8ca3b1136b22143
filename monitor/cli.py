"""The ``monitor`` command line: run, check-config, broker, replay, demo."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from monitor import __version__
from monitor.config import BOOTSTRAP_ENV, ConfigError, MonitorConfig, load_config

log = logging.getLogger("monitor")

DEFAULT_BROKER_PORT = 9092


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``monitor`` and ``python -m monitor``; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    from monitor.evaluation.runs_cli import add_runs_parser, add_tracking_arguments

    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Streaming online anomaly monitor: metric streams in from Kafka, "
        "anomaly events and Prometheus gauges out.",
    )
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the daemon against a Kafka cluster",
        description="Run the daemon until SIGTERM/SIGINT.",
    )
    run.add_argument("--config", type=Path, help="YAML configuration (default: built-in defaults)")
    run.add_argument("--log-level", help="override logging.level")
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check-config",
        help="validate configuration files",
        description="Validate configuration files; print every error. "
        "Exit 0 when all are valid, 2 otherwise.",
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.set_defaults(handler=_check_config)

    broker = commands.add_parser(
        "broker",
        help="serve the embedded Kafka-compatible broker",
        description="Serve the embedded tansu broker (memory storage) on 127.0.0.1 until stopped.",
    )
    broker.add_argument("--port", type=int, default=DEFAULT_BROKER_PORT)
    broker.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME[:PARTITIONS]",
        help="create this topic once the broker is up (repeatable)",
    )
    broker.set_defaults(handler=_broker)

    replay = commands.add_parser(
        "replay",
        help="produce a timestamp,value CSV into a topic",
        description="Produce a CSV (header timestamp,value) into a topic "
        "as one stream of native records, optionally paced.",
    )
    replay.add_argument("csv", type=Path)
    replay.add_argument("--topic", default="metrics")
    replay.add_argument(
        "--bootstrap-servers", default=None, help=f"default: ${BOOTSTRAP_ENV} or 127.0.0.1:9092"
    )
    replay.add_argument("--stream", help="stream name (default: the file name without extension)")
    replay.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="records per second")
    pace.add_argument(
        "--speedup", type=float, help="replay at this multiple of the series' own pace"
    )
    replay.set_defaults(handler=_replay)

    feed = commands.add_parser(
        "feed",
        help="produce the demo feed into a topic of any cluster",
        description="Produce the demo feed (NAB series when available, and a synthetic fleet "
        "with planted spikes, level shifts and dropouts) into a topic, then exit.",
    )
    feed.add_argument(
        "--bootstrap-servers", default=None, help=f"default: ${BOOTSTRAP_ENV} or 127.0.0.1:9092"
    )
    feed.add_argument("--topic", default="metrics")
    feed.add_argument("--streams", type=int, default=300, help="synthetic streams")
    feed.add_argument("--points", type=int, default=2000, help="points per synthetic stream")
    feed.add_argument("--season", type=int, default=144, help="season length of the fleet")
    feed.add_argument("--rate", type=float, default=1000.0, help="records per second (0: max)")
    feed.set_defaults(handler=_feed)

    evaluate = commands.add_parser(
        "evaluate",
        help="replay labelled history and score it with NAB's rules",
        description="Replay every labelled <category>/<file>.csv under --data through the "
        "daemon's detection code, write NAB's results layout, print the NAB scores (optimised "
        "threshold and the daemon's own decisions) per profile and category, and record the "
        "run with MLflow.",
    )
    _add_evaluation_inputs(evaluate)
    evaluate.add_argument(
        "--out", type=Path, default=Path("results"), help="results folder (default: ./results)"
    )
    evaluate.add_argument(
        "--profiles", type=Path, help="NAB profiles.json (default: beside the labels, else NAB's)"
    )
    evaluate.add_argument("--plots", action="store_true", help="render a PNG per series too")
    add_tracking_arguments(evaluate)
    evaluate.add_argument("--run-name")
    evaluate.add_argument("--no-track", action="store_true", help="do not record the run")
    evaluate.set_defaults(handler=_evaluate)

    plot = commands.add_parser(
        "plot",
        help="render labelled series with the detector's view of them",
        description="Replay labelled series and render one PNG each: values, expected value "
        "and prediction band, detected anomalies in red, labelled windows shaded, and the "
        "score against its threshold below.",
    )
    _add_evaluation_inputs(plot)
    plot.add_argument("--out", type=Path, default=Path("results/plots"))
    plot.add_argument(
        "--files",
        nargs="*",
        default=[],
        metavar="GLOB",
        help="only series whose category/file name matches (shell glob)",
    )
    plot.set_defaults(handler=_plot)

    add_runs_parser(commands)

    demo = commands.add_parser(
        "demo",
        help="embedded broker + demo feed + daemon (make run)",
        description="Start an embedded broker, create the topics, replay "
        "the demo feed and run the daemon; Ctrl-C stops everything.",
    )
    demo.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    demo.add_argument("--streams", type=int, default=300, help="synthetic streams")
    demo.add_argument("--points", type=int, default=2000, help="points per synthetic stream")
    demo.add_argument("--rate", type=float, default=10_000.0, help="records per second (0: max)")
    demo.add_argument("--broker-port", type=int, default=0, help="0 picks a free port")
    demo.set_defaults(handler=_demo)
    return parser


def _add_evaluation_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, required=True, help="folder of <category>/<file>.csv (timestamp,value)"
    )
    parser.add_argument(
        "--labels", type=Path, required=True, help="NAB-style combined_windows.json"
    )
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))


def setup_logging(level: str) -> None:
    """One line per message on stderr; called by commands, never at import."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)


def _load(path: Path | None) -> MonitorConfig:
    if path is None:
        return load_config_from_env()
    return load_config(path)


def load_config_from_env() -> MonitorConfig:
    """The built-in defaults, with the environment overrides applied."""
    from monitor.config import load_config_text

    return load_config_text("{}", source="(defaults)")


def _bootstrap_servers(args: argparse.Namespace) -> str:
    """``--bootstrap-servers``, else ``$MONITOR_KAFKA_BOOTSTRAP_SERVERS``, else 127.0.0.1:9092."""
    return args.bootstrap_servers or os.environ.get(BOOTSTRAP_ENV) or "127.0.0.1:9092"


def _config_or_none(path: Path | None) -> MonitorConfig | None:
    """The configuration at ``path`` (built-in defaults when None); None after printing
    every error, for the command to exit 2."""
    try:
        return _load(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    config = _config_or_none(args.config)
    if config is None:
        return 2
    setup_logging(args.log_level or config.logging.level)
    from monitor.daemon.runner import run_daemon
    from monitor.kafka.exceptions import KafkaSetupError

    try:
        return run_daemon(config)
    except KafkaSetupError as exc:
        print(f"monitor run: {exc}", file=sys.stderr)
        return 1


def _check_config(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            load_config(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            status = 2
        else:
            print(f"{path}: ok")
    return status


def _broker(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    if not args.topic:
        from monitor.kafka.broker import serve_forever

        return serve_forever(args.port)
    from monitor.kafka.admin import ensure_topics
    from monitor.kafka.broker import EmbeddedBroker

    topics = {}
    for spec in args.topic:
        name, _, partitions = spec.partition(":")
        topics[name] = int(partitions or 1)
    stop = threading.Event()
    from monitor.daemon.runner import stop_on_signals

    with EmbeddedBroker(args.port) as broker, stop_on_signals(stop):
        ensure_topics(broker.bootstrap_servers, topics)
        print(
            f"broker listening on {broker.bootstrap_servers} with topics {sorted(topics)}",
            flush=True,
        )
        while not stop.wait(0.5):
            if not broker.running:
                print("broker exited", file=sys.stderr)
                return 1
    return 0


def _replay(args: argparse.Namespace) -> int:

    from kafka import KafkaProducer

    from monitor.replay import ReplayError, replay_csv

    setup_logging("INFO")
    servers = _bootstrap_servers(args)
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--label expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        labels[key] = value
    producer = KafkaProducer(bootstrap_servers=servers.split(","))
    try:
        sent = replay_csv(
            producer,
            args.topic,
            args.csv,
            stream=args.stream,
            labels=labels,
            rate=args.rate,
            speedup=args.speedup,
        )
    except (ReplayError, OSError) as exc:
        print(f"replay failed: {exc}", file=sys.stderr)
        return 2
    finally:
        producer.close()
    print(f"replayed {sent} points of {args.csv} into {args.topic}")
    return 0


def _feed(args: argparse.Namespace) -> int:

    from kafka import KafkaProducer

    from monitor.daemon.runner import stop_on_signals
    from monitor.demo.feed import demo_series, produce_feed

    setup_logging("INFO")
    servers = _bootstrap_servers(args)
    series = demo_series(args.streams, args.points, season_length=args.season)
    producer = KafkaProducer(bootstrap_servers=servers.split(","), linger_ms=20)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            stats = produce_feed(producer, args.topic, series, args.rate, stop)
    finally:
        producer.close(timeout=10)
    print(f"produced {stats.sent} points and {stats.bad} malformed records into {args.topic}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from monitor.evaluation.evaluate import evaluate

    config = _config_or_none(args.config)
    if config is None:
        return 2
    report, replayed, windows = evaluate(
        config, args.data, args.labels, args.out, profiles_path=args.profiles
    )
    plots_dir = None
    if args.plots:
        from monitor.evaluation.plots import plot_all

        plots_dir = args.out / "plots"
        plot_all(replayed, windows, plots_dir)
    print(report.render())
    print(f"\nresults in {args.out}/" + (f", plots in {plots_dir}/" if plots_dir else ""))
    if not args.no_track:
        from monitor.evaluation.tracking import record_run

        run_id = record_run(
            config=config,
            config_path=args.config,
            metrics=report.metrics,
            data_dir=args.data,
            labels=args.labels,
            results_dir=args.out,
            plots_dir=plots_dir,
            tracking_uri=args.tracking_uri,
            experiment=args.experiment,
            run_name=args.run_name,
        )
        print(f"recorded MLflow run {run_id} in experiment {args.experiment}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    import fnmatch

    from monitor.evaluation import nab
    from monitor.evaluation.plots import plot_all
    from monitor.evaluation.replay import find_series, replay

    config = _config_or_none(args.config)
    if config is None:
        return 2
    series = find_series(args.data)
    if args.files:
        series = [s for s in series if any(fnmatch.fnmatch(s.name, g) for g in args.files)]
    if not series:
        print("no series matched", file=sys.stderr)
        return 2
    windows = nab.load_windows(args.labels)
    for path in plot_all(replay(config, series), windows, args.out):
        print(path)
    return 0


def demo_config(config: MonitorConfig, bootstrap_servers: str, state_dir: str) -> MonitorConfig:
    """``config`` for the demo's daemon: its embedded broker, and checkpoints in
    ``state_dir``, new each run like the broker's topics (checkpoints of an earlier
    run would make the daemon resume at offsets of topics that no longer exist, past
    the end of the new ones).

    >>> config = demo_config(MonitorConfig(), "127.0.0.1:9092", "/tmp/demo-state")
    >>> config.kafka.bootstrap_servers, config.state.dir
    ('127.0.0.1:9092', '/tmp/demo-state')
    """
    kafka = config.kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
    state = config.state.model_copy(update={"dir": state_dir})
    return config.model_copy(update={"kafka": kafka, "state": state})


def _demo(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer

    from monitor.daemon.runner import output_topics, run_daemon
    from monitor.demo.feed import demo_series, produce_feed
    from monitor.kafka.admin import ensure_topics
    from monitor.kafka.broker import EmbeddedBroker

    config = _config_or_none(args.config)
    if config is None:
        return 2
    setup_logging(config.logging.level)
    stop = threading.Event()
    with (
        EmbeddedBroker(args.broker_port or None) as broker,
        tempfile.TemporaryDirectory(prefix="monitor-demo-state-") as state_dir,
    ):
        log.info("embedded broker on %s", broker.bootstrap_servers)
        config = demo_config(config, broker.bootstrap_servers, state_dir)
        ensure_topics(
            broker.bootstrap_servers,
            {**{t: 4 for t in config.kafka.topics}, **output_topics(config)},
        )
        seasonality = max([o.seasonality or 0 for o in config.streams.overrides] or [0]) or 144
        series = demo_series(args.streams, args.points, season_length=seasonality)
        log.info(
            "demo feed: %d streams, %d points, at %s records/s",
            len(series),
            sum(len(s) for s in series),
            args.rate or "max",
        )
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=20)
        feeder = threading.Thread(
            target=produce_feed,
            args=(producer, config.kafka.topics[0], series, args.rate, stop),
            name="demo-feed",
            daemon=True,
        )
        feeder.start()
        try:
            return run_daemon(config, stop)
        finally:
            stop.set()
            feeder.join(timeout=10)
            producer.close(timeout=5)
