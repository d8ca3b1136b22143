import json

import numpy as np
import pandas as pd
import pytest

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.evaluation.evaluate import evaluate, results_frame
from monitor.evaluation.replay import find_series, replay
from monitor.records import Point


@pytest.fixture
def corpus(tmp_path):
    """A two-category corpus: one series with a planted spike and window, one without."""
    rng = np.random.default_rng(3)
    times = pd.date_range("2014-04-01", periods=1200, freq="5min")
    stamps = times.strftime("%Y-%m-%d %H:%M:%S")
    data = tmp_path / "data"
    for category, name, spike in (("cat_a", "spiky.csv", 900), ("cat_b", "quiet.csv", None)):
        values = 20 + rng.normal(0, 1, len(times))
        if spike is not None:
            values[spike] = 60.0
        (data / category).mkdir(parents=True)
        pd.DataFrame({"timestamp": stamps, "value": values}).to_csv(
            data / category / name, index=False
        )
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {
                "cat_a/spiky.csv": [[stamps[880] + ".000000", stamps[920] + ".000000"]],
                "cat_b/quiet.csv": [],
            }
        )
    )
    return data, labels


def test_results_are_written_in_nabs_layout(corpus, tmp_path):
    data, labels = corpus
    out = tmp_path / "out"
    report, replayed, _ = evaluate(MonitorConfig(), data, labels, out, progress=False)
    frame = pd.read_csv(out / "cat_a" / "monitor_spiky.csv", dtype={"timestamp": str})
    source = pd.read_csv(data / "cat_a" / "spiky.csv", dtype={"timestamp": str})
    assert list(frame.columns) == ["timestamp", "value", "anomaly_score", "label", "alert"]
    assert frame["timestamp"].tolist() == source["timestamp"].tolist()
    assert np.array_equal(frame["value"].to_numpy(), source["value"].to_numpy())
    scores = frame["anomaly_score"].to_numpy()
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert frame["label"].sum() == 41 and frame["label"][880:921].all()
    assert frame["alert"][900] == 1
    assert (out / "cat_b" / "monitor_quiet.csv").exists()
    assert json.loads((out / "metrics.json").read_text())["window.recall"] == 1.0


def test_scores_and_report(corpus):
    data, labels = corpus
    report, _, _ = evaluate(MonitorConfig(), data, labels, progress=False)
    m = report.metrics
    assert m["nab.standard.optimized"] > 90  # the spike is found at once, nothing else fires
    assert m["window.detected"] == 1 and m["window.total"] == 1
    assert m["false_alerts_per_day.no_anomaly"] == 0.0
    assert m["cat_a/files"] == 1 and "cat_b/false_alerts_per_day" in m
    assert report.rows == 2400 and report.files == 2
    text = report.render()
    assert "standard" in text and "cat_a" in text and "F1" in text


def test_replay_is_the_daemons_detector_row_for_row(corpus):
    """Evaluation scores exactly what the daemon's detector scores for the same points."""
    data, _ = corpus
    series = find_series(data)
    replayed = replay(MonitorConfig(), series)
    for item in replayed:
        detector = Detector(MonitorConfig())
        moments = pd.to_datetime(item.series.timestamps, utc=True)
        points = [
            Point(item.series.name, (), ts.timestamp(), float(v))
            for ts, v in zip(moments, item.series.values, strict=True)
        ]
        scored = detector.process(points).scored
        # Equal up to rounding: numpy's vector and scalar loops may differ in the last bit.
        np.testing.assert_allclose(scored.score, item.score, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(scored.anomalous, item.alert)


def test_frame_labels_rows_inside_windows_inclusive():
    stamps = pd.Series(["2014-01-01 00:00:00", "2014-01-01 00:05:00", "2014-01-01 00:10:00"])
    series = find_series.__globals__["Series"]("c/x.csv", stamps, np.array([1.0, 2.0, 3.0]))
    fake = replay(MonitorConfig(), [series])[0]
    window = [(pd.Timestamp("2014-01-01 00:05:00"), pd.Timestamp("2014-01-01 00:10:00"))]
    assert results_frame(fake, window)["label"].tolist() == [0, 1, 1]
