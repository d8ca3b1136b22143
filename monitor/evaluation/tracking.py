"""Record evaluation runs with MLflow, compare them, export the best run's configuration.

Backend: with only ``mlflow-skinny`` installed (no SQLAlchemy/Alembic) MLflow 3.x has
no ``sqlite:`` store, and its file store refuses to start unless
``MLFLOW_ALLOW_FILE_STORE=true``. The local default is therefore the file store at
``<cwd>/mlruns`` as an absolute ``file:`` URI, opted into explicitly around every
MLflow call on a local URI; ``http(s)://`` reaches a tracking server, and ``sqlite:``
and other database URIs work where the full ``mlflow`` package is installed. MLflow's
usage telemetry is off unless ``MLFLOW_DISABLE_TELEMETRY`` says otherwise: nothing here
talks to the network except a tracking server you name.

A run holds the flattened configuration as params (secrets left out), the dataset
fingerprint, code version and package versions as tags (``dataset.fingerprint``,
``code.version``, ``pkg.<name>``), every metric of the report (``nab.standard.optimized``,
``window.f1``, ``realKnownCause/nab.standard.daemon``, ...), and as artifacts
``config/<file>``, ``config/effective.yaml`` (loads with :func:`load_config` unchanged),
``results/`` and ``plots/``.

>>> params = flatten_config(MonitorConfig())
>>> params["detector.threshold.window"], params["kafka.topics"], params["kafka.topic_pattern"]
('1000', '["metrics"]', 'null')
>>> "kafka.sasl_password" in params, "kafka.sasl_password_file" in params
(False, True)
>>> metric_key("realKnownCause/nab.standard.optimized"), metric_key("a b//c:d")
('realKnownCause/nab.standard.optimized', 'a_b/c_d')
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel

import monitor
from monitor.config.loader import load_config
from monitor.config.schema import MonitorConfig
from monitor.exceptions import MonitorError

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

# MLflow starts its telemetry client when it is imported: keep it off unless asked for.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

DEFAULT_EXPERIMENT = "monitor-evaluate"
DEFAULT_METRIC = "nab.standard.optimized"
KEY_METRICS = (
    "nab.standard.optimized",
    "nab.standard.daemon",
    "window.f1",
    "false_alerts_per_day.no_anomaly",
)
"""The metrics a run summary carries besides the one runs are ranked by."""

EFFECTIVE_CONFIG = "config/effective.yaml"
SECRET_KEYS = frozenset({"kafka.sasl_password", "metrics.basic_auth_password"})
"""Configuration keys never logged (params, artifacts) and never exported."""

PACKAGES = (
    "monitor",
    "river",
    "numpy",
    "pandas",
    "kafka-python",
    "prometheus-client",
    "pyyaml",
    "pydantic",
    "mlflow-skinny",
)

MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000
_LOCAL_SCHEMES = ("", "file")
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_TRUNCATED = "...[truncated]"
_LOWER_IS_BETTER = ("false_alerts", "delay.", "false_groups", "runtime")


class TrackingError(MonitorError):
    """The tracking store cannot be used, or holds nothing to compare or export."""


# --- what is logged -----------------------------------------------------------------------


def default_tracking_uri(cwd: Path) -> str:
    """The local file store ``<cwd>/mlruns`` as an absolute ``file:`` URI.

    >>> default_tracking_uri(Path("/srv/work"))
    'file:///srv/work/mlruns'
    """
    return (Path(cwd).absolute() / "mlruns").as_uri()


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else :func:`default_tracking_uri`.

    A plain local path becomes an absolute ``file:`` URI.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri:
        return default_tracking_uri(Path.cwd())
    if urlparse(uri).scheme == "" or (len(uri) > 1 and uri[1] == ":"):
        return Path(uri).absolute().as_uri()
    return uri


def flatten_config(config: MonitorConfig) -> dict[str, str]:
    """The configuration as MLflow params: ``section.sub.key`` -> text.

    Strings stay as they are; numbers, booleans and null are JSON (``0.5``, ``true``,
    ``null``); lists and free-form mappings are JSON-encoded whole. Secrets are left
    out, values are cut to MLflow's 6000 characters and keys made valid.
    """
    flat: dict[str, str] = {}

    def walk(model: BaseModel, dumped: dict[str, Any], prefix: str) -> None:
        # The model tells sections from values; the JSON dump gives the values.
        for name in type(model).model_fields:
            key = f"{prefix}{name}"
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value, dumped[name], key + ".")
            elif not _is_secret(key):
                flat[_clean_key(key)] = _param_value(dumped[name])

    walk(config, config.model_dump(mode="json"), "")
    return flat


def effective_config_yaml(config: MonitorConfig, header: str = "") -> str:
    """The configuration as YAML that :func:`load_config` accepts unchanged (no secrets)."""
    data = _without_secrets(config.model_dump(mode="json"))
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return _comment(header) + text


def dataset_fingerprint(data_dir: Path, labels: Path) -> str:
    """``sha256:<hex>`` over every CSV under ``data_dir`` and the labels file.

    Each file contributes its relative path (the labels file its name), its size and
    its bytes, in sorted path order: renaming, editing, adding or removing a file
    changes the fingerprint; moving the whole data set does not.
    """
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    files = sorted((p.relative_to(data_dir).as_posix(), p) for p in data_dir.rglob("*.csv"))
    for name, path in [*files, ("labels:" + Path(labels).name, Path(labels))]:
        size = path.stat().st_size
        digest.update(f"{name}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return "sha256:" + digest.hexdigest()


def code_version(repo: Path | None = None) -> str:
    """``git describe --always --dirty`` of ``repo`` (default: this package's checkout).

    Falls back to ``monitor.__version__`` when git is missing or ``repo`` is not the
    top of a git checkout (an installed package inside some other repository is not
    described by that repository).
    """
    repo = Path(repo) if repo is not None else Path(monitor.__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return monitor.__version__
    try:
        top = subprocess.run(
            [git, "-C", str(repo), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        if not top or Path(top).resolve() != repo.resolve():
            return monitor.__version__
        described = subprocess.run(
            [git, "-C", str(repo), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return monitor.__version__
    return described or monitor.__version__


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a result, and Python's."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = monitor.__version__ if name == "monitor" else "not installed"
    versions["python"] = platform.python_version()
    return versions


def metric_key(name: str) -> str:
    """A valid MLflow metric/param/tag key: letters, digits, ``/ . _ -``; others become ``_``.

    Empty, ``.`` and ``..`` path segments are removed or replaced so the key names
    no other file; keys longer than 250 characters are shortened with a hash suffix.
    """
    return _clean_key(name)


# --- recording ----------------------------------------------------------------------------


def record_run(
    *,
    config: MonitorConfig,
    config_path: Path | None,
    metrics: Mapping[str, float],
    data_dir: Path,
    labels: Path,
    results_dir: Path | None,
    plots_dir: Path | None,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Record one evaluation as an MLflow run; return its run id.

    Missing folders or an unreadable config file are reported before a run is created;
    a run whose logging fails half-way is marked FAILED and the error raised.
    """
    from mlflow.entities import Metric, Param, RunTag

    for folder in (results_dir, plots_dir):
        if folder is not None and not Path(folder).is_dir():
            raise NotADirectoryError(f"not a folder: {folder}")
    config_text = _loggable_config_text(Path(config_path)) if config_path is not None else None
    uri = resolve_tracking_uri(tracking_uri)
    fingerprint = dataset_fingerprint(data_dir, labels)
    run_tags: dict[str, str] = {
        "dataset.fingerprint": fingerprint,
        "dataset.data_dir": str(Path(data_dir).absolute()),
        "dataset.labels": str(Path(labels).absolute()),
        "dataset.files": str(sum(1 for _ in Path(data_dir).rglob("*.csv"))),
        "code.version": code_version(),
        "config.file": str(Path(config_path).absolute()) if config_path else "(built-in)",
    }
    run_tags.update({f"pkg.{name}": v for name, v in package_versions().items()})
    run_tags.update(dict(tags or {}))
    now = int(time.time() * 1000)
    metric_rows = _metric_rows(metrics)

    with _store(uri) as client:
        experiment_id = _experiment_id(client, experiment, create=True)
        run = client.create_run(experiment_id, run_name=run_name)
        run_id = run.info.run_id
        try:
            params = [Param(k, v) for k, v in flatten_config(config).items()]
            tag_rows = [
                RunTag(_clean_key(k), _cut(str(v), MAX_TAG_VALUE)) for k, v in run_tags.items()
            ]
            for start in range(0, max(len(params), len(tag_rows)), _BATCH_PARAMS):
                client.log_batch(
                    run_id,
                    params=params[start : start + _BATCH_PARAMS],
                    tags=tag_rows[start : start + _BATCH_PARAMS],
                )
            rows = [Metric(k, v, now, 0) for k, v in metric_rows.items()]
            for start in range(0, len(rows), _BATCH_METRICS):
                client.log_batch(run_id, metrics=rows[start : start + _BATCH_METRICS])
            if config_path is not None and config_text is not None:
                name = Path(config_path).name
                if f"config/{name}" == EFFECTIVE_CONFIG:
                    name = "source-" + name
                client.log_text(run_id, config_text, f"config/{name}")
            header = (
                f"Effective configuration of monitor evaluate run {run_id}\n"
                f"(experiment {experiment!r}; secrets removed)."
            )
            client.log_text(run_id, effective_config_yaml(config, header), EFFECTIVE_CONFIG)
            if results_dir is not None:
                client.log_artifacts(run_id, str(results_dir), "results")
            if plots_dir is not None:
                client.log_artifacts(run_id, str(plots_dir), "plots")
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
    return run_id


# --- comparing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """One recorded run, as :func:`list_runs` ranks it."""

    run_id: str
    name: str
    start_time: datetime
    status: str
    metric: str
    value: float | None
    """The ranking metric; ``None`` when the run lacks it or it is not a number."""
    key_metrics: dict[str, float] = field(default_factory=dict)
    code_version: str | None = None
    dataset_fingerprint: str | None = None


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (false alerts, delays, runtime).

    >>> lower_is_better("nab.standard.optimized"), lower_is_better("delay.mean_rows")
    (False, True)
    """
    return any(part in metric for part in _LOWER_IS_BETTER)


def list_runs(
    tracking_uri: str | None,
    experiment: str = DEFAULT_EXPERIMENT,
    metric: str = DEFAULT_METRIC,
    *,
    ascending: bool | None = None,
) -> list[RunSummary]:
    """Every active run of ``experiment``, best ``metric`` first.

    Higher is better unless the metric is one where lower is (see :func:`lower_is_better`)
    or ``ascending`` says so. Runs without a finite value come last, newest first.
    """
    ascending = lower_is_better(metric) if ascending is None else ascending
    uri = resolve_tracking_uri(tracking_uri)
    with _store(uri) as client:
        experiment_id = _experiment_id(client, experiment, create=False)
        runs = _all_runs(client, experiment_id)
    summaries = [_summary(run, metric) for run in runs]
    summaries.sort(key=lambda s: s.start_time, reverse=True)
    scored = [s for s in summaries if s.value is not None]
    unscored = [s for s in summaries if s.value is None]
    scored.sort(key=lambda s: (s.value or 0.0) if ascending else -(s.value or 0.0))
    return scored + unscored


def best_run(
    tracking_uri: str | None,
    experiment: str = DEFAULT_EXPERIMENT,
    metric: str = DEFAULT_METRIC,
    *,
    ascending: bool | None = None,
) -> RunSummary:
    """The best finished run that has ``metric``; :class:`TrackingError` when none has."""
    for summary in list_runs(tracking_uri, experiment, metric, ascending=ascending):
        if summary.value is not None and summary.status == "FINISHED":
            return summary
    raise TrackingError(f"no finished run of experiment {experiment!r} has metric {metric!r}")


def export_best_config(
    tracking_uri: str | None,
    experiment: str,
    metric: str,
    out_path: Path,
    *,
    ascending: bool | None = None,
) -> Path:
    """Write the best run's ``config/effective.yaml`` to ``out_path``, validated, with a header.

    The header names the run, the metric value and the dates; the file loads with
    :func:`load_config` to the configuration the run was evaluated with.
    """
    ascending = lower_is_better(metric) if ascending is None else ascending
    best = best_run(tracking_uri, experiment, metric, ascending=ascending)
    uri = resolve_tracking_uri(tracking_uri)
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="monitor-best-") as tmp:
        with _store(uri) as client:
            try:
                local = Path(client.download_artifacts(best.run_id, EFFECTIVE_CONFIG, tmp))
            except Exception as exc:
                raise TrackingError(
                    f"run {best.run_id} has no {EFFECTIVE_CONFIG} artifact: {exc}"
                ) from exc
        load_config(local, env={})  # raises ConfigError naming what is wrong
        body = _strip_leading_comments(local.read_text(encoding="utf-8"))
    header = (
        f"Best configuration of MLflow experiment {experiment!r} by {metric} "
        f"({'lower' if ascending else 'higher'} is better).\n"
        f"Run {best.run_id} ({best.name}), {metric} = {best.value:.6g}, "
        f"started {best.start_time:%Y-%m-%d %H:%M:%S} UTC, code {best.code_version or '?'}.\n"
        f"Exported {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC by `monitor runs best --export`."
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    partial.write_text(_comment(header) + body, encoding="utf-8")
    partial.replace(out_path)
    return out_path


# --- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _store(uri: str) -> Iterator[MlflowClient]:
    """An MlflowClient for ``uri``; a local file store is allowed explicitly while in use."""
    scheme = urlparse(uri).scheme
    if scheme in _DATABASE_SCHEMES and not _has_module("sqlalchemy"):
        raise TrackingError(
            f"tracking URI {uri!r} needs the full `mlflow` package (SQLAlchemy, Alembic); "
            "with mlflow-skinny use a file: URI (the default, ./mlruns) or an http(s) server"
        )
    from mlflow.tracking import MlflowClient

    allow = scheme in _LOCAL_SCHEMES
    saved = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    if allow:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield MlflowClient(tracking_uri=uri)
    finally:
        if allow:
            if saved is None:
                os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
            else:
                os.environ["MLFLOW_ALLOW_FILE_STORE"] = saved


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _experiment_id(client: MlflowClient, name: str, *, create: bool) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        if not create:
            raise TrackingError(f"no experiment {name!r} at {client.tracking_uri}")
        return str(client.create_experiment(name))
    if found.lifecycle_stage != "active":
        raise TrackingError(
            f"experiment {name!r} is deleted at {client.tracking_uri}; restore it or use another"
        )
    return str(found.experiment_id)


def _all_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _summary(run: Run, metric: str) -> RunSummary:
    metrics = run.data.metrics
    value = metrics.get(metric)
    finite = value is not None and math.isfinite(value)
    return RunSummary(
        run_id=run.info.run_id,
        name=run.info.run_name or "",
        start_time=datetime.fromtimestamp((run.info.start_time or 0) / 1000, UTC),
        status=run.info.status,
        metric=metric,
        value=float(value) if finite and value is not None else None,
        key_metrics={k: metrics[k] for k in KEY_METRICS if k in metrics},
        code_version=run.data.tags.get("code.version"),
        dataset_fingerprint=run.data.tags.get("dataset.fingerprint"),
    )


def _metric_rows(metrics: Mapping[str, float]) -> dict[str, float]:
    """Metric names made valid (distinct names stay distinct) and values made floats."""
    rows: dict[str, float] = {}
    for name, value in metrics.items():
        key = _clean_key(name)
        if key in rows:
            key = _clean_key(f"{key}-{hashlib.sha256(name.encode()).hexdigest()[:8]}")
        rows[key] = float(value)
    return rows


def _clean_key(name: str) -> str:
    chars = [c if (c.isascii() and (c.isalnum() or c in "/._-")) else "_" for c in str(name)]
    segments = [s for s in "".join(chars).split("/") if s]
    segments = ["_" * len(s) if s in (".", "..") else s for s in segments]
    key = "/".join(segments) or "_"
    if len(key) > MAX_KEY:
        suffix = "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
        key = key[: MAX_KEY - len(suffix)].rstrip("/") + suffix
    return key


def _is_secret(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return key in SECRET_KEYS or leaf.endswith(("password", "secret", "token"))


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return _cut(text, MAX_PARAM_VALUE)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(_TRUNCATED)] + _TRUNCATED


def _without_secrets(data: Any, prefix: str = "") -> Any:
    if isinstance(data, dict):
        return {
            k: _without_secrets(v, f"{prefix}{k}.")
            for k, v in data.items()
            if not _is_secret(f"{prefix}{k}")
        }
    return data


def _loggable_config_text(path: Path) -> str:
    """The config file's text; one holding a literal secret is logged with the secret removed.

    A secret written as ``${ENV}`` is a reference, not the secret, and stays.
    """
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if not isinstance(data, dict):
        return text
    cleaned = _without_literal_secrets(data)
    if cleaned == data:
        return text
    note = f"{path.name} with literal secrets removed before it was logged."
    return _comment(note) + yaml.safe_dump(cleaned, sort_keys=False, allow_unicode=True)


def _without_literal_secrets(data: Any, prefix: str = "") -> Any:
    if isinstance(data, dict):
        kept = {}
        for k, v in data.items():
            key = f"{prefix}{k}"
            literal = isinstance(v, str) and not v.strip().startswith("${")
            if _is_secret(key) and v is not None and (literal or not isinstance(v, str)):
                continue
            kept[k] = _without_literal_secrets(v, key + ".")
        return kept
    return data


def _comment(text: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines()) if text else ""


def _strip_leading_comments(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)
