"""Recording evaluation runs in MLflow, ranking them, exporting the best configuration.

Every test uses a file store under ``tmp_path`` and runs with ``tmp_path`` as the
working directory, so nothing is written in the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

import monitor
from monitor.config import load_config
from monitor.config.schema import (
    DetectorConfig,
    KafkaConfig,
    MonitorConfig,
    StreamOverride,
    StreamsConfig,
    ThresholdConfig,
)
from monitor.evaluation import tracking
from monitor.evaluation.runs_cli import add_runs_parser, format_runs
from monitor.evaluation.tracking import (
    DEFAULT_EXPERIMENT,
    EFFECTIVE_CONFIG,
    TrackingError,
    code_version,
    dataset_fingerprint,
    default_tracking_uri,
    export_best_config,
    flatten_config,
    list_runs,
    package_versions,
    record_run,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

SECRET = "hunter2-do-not-log"


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work in tmp_path; no tracking URI or file-store opt-in from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return (tmp_path / "store" / "mlruns").as_uri()


@pytest.fixture
def client(uri: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """A plain MlflowClient on the test store, to read back what was recorded."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "nab" / "data"
    for category, name in [("realKnownCause", "a.csv"), ("artificialNoAnomaly", "b.csv")]:
        (data / category).mkdir(parents=True)
        rows = [f"2024-01-01 00:{m:02d}:00,{m * 1.5}" for m in range(30)]
        (data / category / name).write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    labels = tmp_path / "nab" / "labels" / "combined_windows.json"
    labels.parent.mkdir(parents=True)
    windows = {
        "realKnownCause/a.csv": [["2024-01-01 00:10:00", "2024-01-01 00:12:00"]],
        "artificialNoAnomaly/b.csv": [],
    }
    labels.write_text(json.dumps(windows))
    return data, labels


@pytest.fixture
def outputs(tmp_path: Path) -> tuple[Path, Path]:
    results = tmp_path / "out" / "results"
    (results / "realKnownCause").mkdir(parents=True)
    (results / "realKnownCause" / "monitor_a.csv").write_text(
        "timestamp,value,anomaly_score,label,alert\n2024-01-01 00:00:00,1.0,0.1,0,0\n"
    )
    (results / "metrics.json").write_text('{"window.f1": 0.5}')
    plots = tmp_path / "out" / "plots"
    plots.mkdir(parents=True)
    (plots / "realKnownCause_a.png").write_bytes(_tiny_png())
    return results, plots


def _tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


CONFIG_A = MonitorConfig(kafka=KafkaConfig(sasl_username="eval", sasl_password=SECRET))
CONFIG_B = MonitorConfig(
    detector=DetectorConfig(sensitivity=0.7, threshold=ThresholdConfig(window=500)),
    streams=StreamsConfig(overrides=(StreamOverride(match="cpu.*", seasonality=24),)),
)
METRICS_A = {
    "nab.standard.optimized": 40.0,
    "nab.standard.daemon": 30.0,
    "window.f1": 0.80,
    "false_alerts_per_day.no_anomaly": 0.5,
    "realKnownCause/nab.standard.optimized": 35.0,
    "realKnownCause/files": 1.0,
    "weird name:metric": 1.0,
}
METRICS_B = {
    "nab.standard.optimized": 55.5,
    "nab.standard.daemon": 45.0,
    "window.f1": 0.60,
    "false_alerts_per_day.no_anomaly": 0.2,
    "realKnownCause/nab.standard.optimized": 50.0,
    "delay.mean_minutes": float("nan"),
}


@pytest.fixture
def two_runs(
    tmp_path: Path, uri: str, dataset: tuple[Path, Path], outputs: tuple[Path, Path]
) -> tuple[str, str, Path]:
    """Run A (config file with a literal secret) and run B (no config file); B scores best."""
    data, labels = dataset
    results, plots = outputs
    config_path = tmp_path / "eval.yaml"
    config_path.write_text(
        f"# evaluation config\nkafka:\n  sasl_username: eval\n  sasl_password: {SECRET}\n"
    )
    assert load_config(config_path, env={}) == CONFIG_A
    run_a = record_run(
        config=CONFIG_A,
        config_path=config_path,
        metrics=METRICS_A,
        data_dir=data,
        labels=labels,
        results_dir=results,
        plots_dir=plots,
        tracking_uri=uri,
        run_name="defaults",
        tags={"purpose": "test"},
    )
    run_b = record_run(
        config=CONFIG_B,
        config_path=None,
        metrics=METRICS_B,
        data_dir=data,
        labels=labels,
        results_dir=results,
        plots_dir=None,
        tracking_uri=uri,
        run_name="tuned",
    )
    return run_a, run_b, config_path


# --- recording ----------------------------------------------------------------------------


def test_record_run_logs_params_tags_metrics(
    two_runs: tuple[str, str, Path],
    client,
    dataset: tuple[Path, Path],
) -> None:
    run_a, run_b, config_path = two_runs
    a, b = client.get_run(run_a), client.get_run(run_b)
    assert a.info.status == b.info.status == "FINISHED"
    assert a.info.run_name == "defaults" and b.info.run_name == "tuned"
    experiment = client.get_experiment(a.info.experiment_id)
    assert experiment.name == DEFAULT_EXPERIMENT == "monitor-evaluate"
    assert b.info.experiment_id == a.info.experiment_id

    assert a.data.params == flatten_config(CONFIG_A)
    assert b.data.params["detector.threshold.window"] == "500"
    assert b.data.params["detector.sensitivity"] == "0.7"
    assert json.loads(b.data.params["streams.overrides"])[0]["match"] == "cpu.*"
    assert a.data.params["kafka.sasl_username"] == "eval"
    assert "kafka.sasl_password" not in a.data.params
    assert SECRET not in json.dumps([a.data.params, a.data.tags])

    fingerprint = dataset_fingerprint(*dataset)
    for run in (a, b):
        tags = run.data.tags
        assert tags["dataset.fingerprint"] == fingerprint
        assert tags["dataset.files"] == "2"
        assert tags["code.version"] == code_version()
        assert tags["pkg.mlflow-skinny"] == package_versions()["mlflow-skinny"]
        assert {f"pkg.{n}" for n in package_versions()} <= set(tags)
    assert a.data.tags["purpose"] == "test"
    assert a.data.tags["config.file"] == str(config_path)
    assert b.data.tags["config.file"] == "(built-in)"

    assert a.data.metrics["nab.standard.optimized"] == 40.0
    assert a.data.metrics["realKnownCause/nab.standard.optimized"] == 35.0
    assert a.data.metrics["weird_name_metric"] == 1.0
    assert b.data.metrics["nab.standard.optimized"] == 55.5
    assert math.isnan(b.data.metrics["delay.mean_minutes"])


def test_record_run_logs_artifacts(
    two_runs: tuple[str, str, Path], client: MlflowClient, tmp_path: Path
) -> None:
    run_a, run_b, _ = two_runs

    def files(run_id: str, path: str = "") -> set[str]:
        found: set[str] = set()
        for info in client.list_artifacts(run_id, path or None):
            found |= files(run_id, info.path) if info.is_dir else {info.path}
        return found

    assert files(run_a) == {
        "config/eval.yaml",
        EFFECTIVE_CONFIG,
        "results/metrics.json",
        "results/realKnownCause/monitor_a.csv",
        "plots/realKnownCause_a.png",
    }
    assert files(run_b) == {
        EFFECTIVE_CONFIG,
        "results/metrics.json",
        "results/realKnownCause/monitor_a.csv",
    }

    out = tmp_path / "downloaded"
    out.mkdir()
    png = Path(client.download_artifacts(run_a, "plots/realKnownCause_a.png", str(out)))
    assert png.read_bytes() == _tiny_png()
    # The config file is logged without its literal secret, and still loads.
    logged = Path(client.download_artifacts(run_a, "config/eval.yaml", str(out)))
    assert SECRET not in logged.read_text()
    assert load_config(logged, env={}) == CONFIG_A.model_copy(
        update={"kafka": CONFIG_A.kafka.model_copy(update={"sasl_password": None})}
    )
    # effective.yaml loads unchanged to the run's configuration (secrets removed).
    for run_id, config in [(run_a, CONFIG_A), (run_b, CONFIG_B)]:
        target = out / run_id
        target.mkdir()
        effective = Path(client.download_artifacts(run_id, EFFECTIVE_CONFIG, str(target)))
        assert SECRET not in effective.read_text()
        assert run_id in effective.read_text()
        expected = config.model_copy(
            update={"kafka": config.kafka.model_copy(update={"sasl_password": None})}
        )
        assert load_config(effective, env={}) == expected


def test_record_run_leaves_environment_and_repo_alone(
    two_runs: tuple[str, str, Path], tmp_path: Path
) -> None:
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
    assert os.environ.get("MLFLOW_DISABLE_TELEMETRY") == "true"
    assert not (tmp_path / "mlruns").exists()  # the explicit URI was used, not the default
    assert (tmp_path / "store" / "mlruns").is_dir()


def test_record_run_checks_inputs_before_creating_a_run(
    uri: str, dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(NotADirectoryError, match="missing"):
        record_run(
            config=MonitorConfig(),
            config_path=None,
            metrics={"nab.standard.optimized": 99.0},
            data_dir=dataset[0],
            labels=dataset[1],
            results_dir=tmp_path / "missing",
            plots_dir=None,
            tracking_uri=uri,
        )
    assert not (tmp_path / "store").exists()


def test_record_run_marks_a_failed_run(
    uri: str,
    dataset: tuple[Path, Path],
    outputs: tuple[Path, Path],
    client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.tracking import MlflowClient

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(MlflowClient, "log_artifacts", broken)
    with pytest.raises(OSError, match="disk full"):
        record_run(
            config=MonitorConfig(),
            config_path=None,
            metrics={"nab.standard.optimized": 99.0},
            data_dir=dataset[0],
            labels=dataset[1],
            results_dir=outputs[0],
            plots_dir=None,
            tracking_uri=uri,
        )
    experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    assert experiment is not None
    (failed,) = client.search_runs([experiment.experiment_id])
    assert failed.info.status == "FAILED"
    # A failed run is listed but never the best.
    with pytest.raises(TrackingError, match="no finished run"):
        tracking.best_run(uri)
    assert list_runs(uri)[0].status == "FAILED"


def test_default_store_is_a_file_store_under_the_working_directory(
    tmp_path: Path, dataset: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_tracking_uri(tmp_path) == f"file://{tmp_path}/mlruns"
    assert resolve_tracking_uri(None) == f"file://{tmp_path}/mlruns"
    assert resolve_tracking_uri("rel/store") == f"file://{tmp_path}/rel/store"
    assert resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "env-store").as_uri())
    assert resolve_tracking_uri(None) == (tmp_path / "env-store").as_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    run_id = record_run(
        config=MonitorConfig(),
        config_path=None,
        metrics={"nab.standard.optimized": 1.0},
        data_dir=dataset[0],
        labels=dataset[1],
        results_dir=None,
        plots_dir=None,
    )
    assert list(tmp_path.joinpath("mlruns").glob(f"*/{run_id}/meta.yaml"))
    assert [r.run_id for r in list_runs(None)] == [run_id]


def test_database_uri_without_sqlalchemy_is_a_clear_error(dataset: tuple[Path, Path]) -> None:
    pytest.importorskip("mlflow")
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("SQLAlchemy is installed: the sqlite store is available")
    with pytest.raises(TrackingError, match="full `mlflow` package"):
        list_runs("sqlite:///mlflow.db")


# --- comparing and exporting --------------------------------------------------------------


def test_list_runs_ranks_best_first(two_runs: tuple[str, str, Path], uri: str) -> None:
    run_a, run_b, _ = two_runs
    runs = list_runs(uri, DEFAULT_EXPERIMENT)
    assert [r.run_id for r in runs] == [run_b, run_a]
    assert runs[0].value == 55.5 and runs[0].name == "tuned"
    assert runs[0].key_metrics["window.f1"] == 0.6
    assert runs[0].code_version == code_version()
    assert runs[0].start_time.tzinfo is not None
    # Another metric ranks the other way round; false alerts: lower is better.
    assert [r.run_id for r in list_runs(uri, metric="window.f1")] == [run_a, run_b]
    fa = list_runs(uri, metric="false_alerts_per_day.no_anomaly")
    assert [r.run_id for r in fa] == [run_b, run_a]
    forced = list_runs(uri, metric="false_alerts_per_day.no_anomaly", ascending=False)
    assert [r.run_id for r in forced] == [run_a, run_b]
    # Runs without the metric (or with NaN) come last.
    only_a = list_runs(uri, metric="realKnownCause/files")
    assert [(r.run_id, r.value) for r in only_a] == [(run_a, 1.0), (run_b, None)]
    assert list_runs(uri, metric="delay.mean_minutes")[0].value is None
    with pytest.raises(TrackingError, match="no experiment"):
        list_runs(uri, "nope")


def test_export_best_config(two_runs: tuple[str, str, Path], uri: str, tmp_path: Path) -> None:
    _, run_b, _ = two_runs
    out = tmp_path / "configs" / "best.yaml"
    assert export_best_config(uri, DEFAULT_EXPERIMENT, "nab.standard.optimized", out) == out
    text = out.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any(run_b in line and "55.5" in line for line in header)
    assert any("Exported 20" in line for line in header)
    assert load_config(out, env={}) == CONFIG_B
    assert yaml.safe_load(text)["detector"]["threshold"]["window"] == 500

    # By window.f1 run A is best: its config, without the secret.
    out_a = export_best_config(uri, DEFAULT_EXPERIMENT, "window.f1", tmp_path / "a.yaml")
    assert SECRET not in out_a.read_text()
    assert load_config(out_a, env={}).kafka.sasl_username == "eval"

    with pytest.raises(TrackingError):
        export_best_config(uri, DEFAULT_EXPERIMENT, "no.such.metric", tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()


# --- pieces -------------------------------------------------------------------------------


def test_fingerprint_follows_the_data(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    data, labels = dataset
    first = dataset_fingerprint(data, labels)
    assert first.startswith("sha256:") and len(first) == 7 + 64
    assert dataset_fingerprint(data, labels) == first
    # Moving the whole data set keeps it.
    moved = tmp_path / "moved"
    shutil.copytree(data.parent, moved)
    assert dataset_fingerprint(moved / "data", moved / "labels" / labels.name) == first

    csv = data / "realKnownCause" / "a.csv"
    original = csv.read_bytes()
    csv.write_bytes(original.replace(b"1.5", b"1.6", 1))
    changed = dataset_fingerprint(data, labels)
    assert changed != first
    csv.write_bytes(original)
    assert dataset_fingerprint(data, labels) == first

    labels.write_text(labels.read_text().replace("00:12:00", "00:13:00"))
    assert dataset_fingerprint(data, labels) not in (first, changed)
    (data / "realKnownCause" / "new.csv").write_text("timestamp,value\n")
    (data / "notes.txt").write_text("ignored: not a CSV")
    assert len({first, changed, dataset_fingerprint(data, labels)}) == 3


def test_flatten_config_drops_secrets_and_fits_mlflow() -> None:
    config = MonitorConfig(
        kafka=KafkaConfig(sasl_password=SECRET, sasl_password_file=None, topics=("a", "b")),
        streams=StreamsConfig(
            overrides=tuple(StreamOverride(match=f"stream-{i}-*") for i in range(400))
        ),
    )
    flat = flatten_config(config)
    assert "kafka.sasl_password" not in flat and SECRET not in "".join(flat.values())
    assert flat["kafka.topics"] == '["a", "b"]'
    assert flat["kafka.topic_formats"] == "{}"
    assert flat["kafka.create_topics"] == "true"
    assert flat["kafka.sasl_mechanism"] == "null"
    assert flat["detector.forecaster.alpha"] == "0.3"
    assert flat["logging.level"] == "INFO"
    assert len(flat["streams.overrides"]) == 6000
    assert flat["streams.overrides"].endswith("...[truncated]")
    assert all(len(v) <= 6000 for v in flat.values())
    assert all(set(k) <= set("abcdefghijklmnopqrstuvwxyz_.") for k in flat)
    # Every leaf of the configuration is there, except the secret.
    leaves = _leaves(config.model_dump(mode="json"))
    assert set(flat) == leaves - {"kafka.sasl_password", "metrics.basic_auth_password"}


def _leaves(data: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("topic_formats",):
            keys |= _leaves(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_metric_keys_are_made_valid() -> None:
    key = tracking.metric_key
    assert key("standard/realKnownCause/nab.x-y_z") == "standard/realKnownCause/nab.x-y_z"
    assert key("/a//b/") == "a/b"
    assert key("a/../b") == "a/__/b"
    assert key("é ü") == "___"
    assert key("") == "_"
    long = key("x" * 300)
    assert len(long) == 250 and long != key("x" * 301)


def test_code_version(tmp_path: Path) -> None:
    assert code_version(tmp_path) == monitor.__version__  # not a checkout
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()

    def run(*args: str) -> None:
        subprocess.run([git, "-C", str(repo), *args], capture_output=True, check=True)

    run("init", "-q")
    (repo / "f.txt").write_text("1")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    clean = code_version(repo)
    assert len(clean) >= 7 and not clean.endswith("-dirty")
    (repo / "f.txt").write_text("2")
    assert code_version(repo) == clean + "-dirty"
    (repo / "sub").mkdir()
    assert code_version(repo / "sub") == monitor.__version__  # inside, but not the top


def test_package_versions() -> None:
    versions = package_versions()
    assert set(versions) == {*tracking.PACKAGES, "python"}
    assert versions["mlflow-skinny"][0].isdigit()
    assert versions["python"].count(".") == 2


# --- the runs command ---------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="monitor")
    commands = parser.add_subparsers(dest="command")
    add_runs_parser(commands)
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_runs_list_command(
    two_runs: tuple[str, str, Path], uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_a, run_b, _ = two_runs
    assert _cli(["runs", "list", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "2 run(s), ranked by nab.standard.optimized" in lines[0]
    assert "nab.standard.optimized" in lines[1] and "window.f1" in lines[1]
    assert run_b[:12] in lines[3] and "55.500" in lines[3] and "tuned" in lines[3]
    assert run_a[:12] in lines[4] and "40.000" in lines[4]

    assert (
        _cli(["runs", "list", "--tracking-uri", uri, "--metric", "window.f1", "--limit", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert run_a[:12] in out and run_b[:12] not in out and "1 more" in out

    assert _cli(["runs", "list", "--tracking-uri", uri, "--experiment", "nope"]) == 1
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert _cli(["runs"]) == 2


def test_runs_best_command(
    two_runs: tuple[str, str, Path], uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_b, _ = two_runs
    assert _cli(["runs", "best", "--tracking-uri", uri]) == 0
    assert run_b[:12] in capsys.readouterr().out
    assert not (tmp_path / "configs").exists()

    target = Path("configs") / "best.yaml"  # relative to the working directory (tmp_path)
    assert _cli(["runs", "best", "--tracking-uri", uri, "--export", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"wrote the configuration of run {run_b} to configs/best.yaml" in out
    assert load_config(tmp_path / "configs" / "best.yaml", env={}) == CONFIG_B

    assert _cli(["runs", "best", "--tracking-uri", uri, "--metric", "nothing"]) == 1
    assert "has metric 'nothing'" in capsys.readouterr().err


def test_format_runs_empty() -> None:
    assert format_runs([]) == "no runs"
