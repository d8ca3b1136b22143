"""``monitor evaluate`` and ``monitor plot`` as commands, on a small labelled corpus."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.image
import mlflow
import pandas as pd

from tests.evaluation.test_evaluate import corpus  # noqa: F401 - fixture


def run(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_evaluate_writes_results_prints_scores_and_records_the_run(
    corpus,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    data, labels = corpus
    out, store = tmp_path / "results", tmp_path / "mlruns"
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n")
    result = run(
        "evaluate",
        "--data",
        str(data),
        "--labels",
        str(labels),
        "--config",
        str(config),
        "--out",
        str(out),
        "--plots",
        "--tracking-uri",
        str(store),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for line in (
        "standard",
        "reward_low_FP_rate",
        "reward_low_FN_rate",
        "cat_a",
        "F1",
        "replayed and scored in",
        "recorded MLflow run",
    ):
        assert line in result.stdout, line
    assert "replaying 2 series" in result.stderr
    assert len(pd.read_csv(out / "cat_a" / "monitor_spiky.csv")) == 1200
    assert matplotlib.image.imread(out / "plots" / "cat_a" / "spiky.png").shape[:2] == (660, 1540)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as monitor's tracking does
    client = mlflow.tracking.MlflowClient(tracking_uri=f"file://{store}")
    [experiment] = [e for e in client.search_experiments() if e.name == "monitor-evaluate"]
    [record] = client.search_runs([experiment.experiment_id])
    assert record.data.metrics["nab.standard.optimized"] > 90
    assert record.data.tags["dataset.fingerprint"].startswith("sha256:")

    exported = tmp_path / "best.yaml"
    result = run(
        "runs", "best", "--tracking-uri", str(store), "--export", str(exported), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert run("check-config", str(exported), cwd=tmp_path).returncode == 0


def test_plot_renders_the_chosen_series(corpus, tmp_path):  # noqa: F811
    data, labels = corpus
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n")
    result = run(
        "plot",
        "--data",
        str(data),
        "--labels",
        str(labels),
        "--config",
        str(config),
        "--out",
        str(tmp_path / "p"),
        "--files",
        "cat_a/*",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("spiky.png")
    assert not (tmp_path / "p" / "cat_b").exists()
    assert (
        run(
            "plot",
            "--data",
            str(data),
            "--labels",
            str(labels),
            "--config",
            str(config),
            "--files",
            "nothing*",
            cwd=tmp_path,
        ).returncode
        == 2
    )
