import json

import numpy as np
import pytest

from monitor.config import MonitorConfig
from monitor.detection import CONTRIBUTIONS, DETECTORS, Detector
from monitor.records import Point


def config(**detector) -> MonitorConfig:
    return MonitorConfig.model_validate_json(json.dumps({"detector": detector}))


def run(detector: Detector, values: np.ndarray, name: str = "s", step: float = 60.0):
    points = [Point(name, (), step * t, float(v)) for t, v in enumerate(values)]
    return detector.process(points).scored


def noisy(n: int, seed: int = 0, level: float = 100.0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0, 1, n)


def test_no_alert_during_warm_up_even_for_huge_spikes():
    values = noisy(600)
    values[[50, 150, 250]] += 50
    scored = run(Detector(config(warmup=300)), values)
    assert not scored.anomalous[:300].any()


def test_a_dropout_stays_anomalous_while_it_lasts_without_suppression():
    values = noisy(1500)
    values[1000:1020] = 0.0
    scored = run(Detector(config(suppression_span=0)), values)
    flagged = np.flatnonzero(scored.anomalous)
    assert flagged[0] == 1000
    assert np.isin(np.arange(1000, 1020), flagged).sum() >= 18
    assert not np.isin(np.arange(1030, 1500), flagged).any()


def test_suppression_alerts_once_at_the_onset_of_a_dropout():
    values = noisy(1500)
    values[1000:1020] = 0.0
    scored = run(Detector(config()), values)
    assert np.flatnonzero(scored.anomalous).tolist() == [1000]
    # The suppressed points still carry their contributions: nothing is hidden there.
    assert (scored.contributions[1001:1020, 0] > 0.9).all()


def test_a_second_saturated_spike_no_larger_than_the_first_does_not_alert_again():
    # Both spikes score 1 (beyond a tail probability of 1e-10): suppression compares
    # them beyond that, so the second is not a new peak.
    values = noisy(1200)
    values[[1000, 1030]] += 100.0
    scored = run(Detector(config()), values)
    assert scored.score[1000] == 1.0
    assert np.flatnonzero(scored.anomalous).tolist() == [1000]
    bigger = values.copy()
    bigger[1030] += 900.0
    assert np.flatnonzero(run(Detector(config()), bigger).anomalous).tolist() == [1000, 1030]


def test_a_gap_keeps_the_seasonal_phase():
    # Season of 24 points, one point a minute; 10 minutes missing then the series goes on.
    t = np.arange(2000)
    values = 100 + 10 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(1).normal(0, 0.1, 2000)
    kept = (t < 1500) | (t >= 1510)
    overrides = {"streams": {"overrides": [{"match": "s", "seasonality": 24}]}}
    cfg = MonitorConfig.model_validate_json(json.dumps(overrides))
    points = [Point("s", (), 60.0 * i, float(values[i])) for i in t[kept]]
    scored = Detector(cfg).process(points).scored
    after = scored.ts >= 60.0 * 1510
    error = np.abs(scored.value[after] - scored.expected[after])[:24]
    assert error.max() < 1.0  # the phase is kept: slipped by 10 points it is off by up to 19


def test_a_level_shift_alerts_then_becomes_the_new_normal():
    values = noisy(2000)
    values[1000:] += 15.0
    detector = Detector(config(rebaseline_after=30))
    scored = run(detector, values)
    flagged = np.flatnonzero(scored.anomalous)
    assert flagged[0] == 1000
    assert flagged.max() < 1000 + 30 + 10
    assert abs(scored.expected[-1] - 115.0) < 1.0


def test_without_robust_learning_the_forecaster_swallows_a_dropout():
    values = noisy(1500)
    values[1000:1020] = 0.0
    robust = run(Detector(config(suppression_span=0)), values)
    naive = run(Detector(config(rebaseline_after=0, suppression_span=0)), values)
    assert robust.anomalous[1000:1020].sum() > naive.anomalous[1000:1020].sum()


def test_rounds_give_the_same_result_as_one_point_at_a_time():
    rng = np.random.default_rng(5)
    n_streams, n_points = 7, 500
    values = 50 + rng.normal(0, 2, (n_streams, n_points))
    values[:, 400] += 30
    points = [
        Point(f"s{i}", (("k", str(i)),), 60.0 * t, float(values[i, t]))
        for t in range(n_points)
        for i in range(n_streams)
    ]
    rng.shuffle(points)  # arrival order across streams and in time does not matter
    batched = Detector(config(warmup=100))
    outcome = batched.process(points)
    single = Detector(config(warmup=100))
    for point in sorted(points, key=lambda p: p.ts):
        single.process([point])
    keys = sorted(batched.streams.rows)
    batched_rows = [batched.streams.rows[k] for k in keys]
    single_rows = [single.streams.rows[k] for k in keys]
    # Equal up to rounding (numpy's vector and scalar loops may differ in the last bit);
    # every decision exactly equal.
    for name in ("score", "threshold", "expected", "lower", "upper"):
        np.testing.assert_allclose(
            batched.state[name][batched_rows],
            single.state[name][single_rows],
            rtol=1e-12,
            atol=1e-15,
            err_msg=name,
        )
    for name in ("anomalous", "events"):
        np.testing.assert_array_equal(
            batched.state[name][batched_rows], single.state[name][single_rows], err_msg=name
        )
    assert batched.state["events"][batched_rows].sum() >= n_streams
    assert len(outcome.scored.index) == n_streams * n_points


def test_scores_are_finite_and_in_unit_interval():
    values = np.concatenate([np.zeros(300), noisy(300), [1e12, -1e12, 0.0], noisy(100)])
    scored = run(Detector(config()), values)
    for name in ("score", "threshold"):
        array = getattr(scored, name)
        assert np.isfinite(array).all() and (array >= 0).all() and (array <= 1).all()
    assert np.isfinite(scored.contributions).all()


def test_per_stream_overrides_apply_by_glob():
    cfg = MonitorConfig.model_validate_json(
        json.dumps(
            {
                "detector": {"warmup": 10},
                "streams": {
                    "overrides": [
                        {"match": "quiet.*", "disabled": True},
                        {"match": "season.*", "seasonality": 24, "warmup": 50},
                        {"match": "keen.*", "sensitivity": 1.0},
                    ]
                },
            }
        )
    )
    detector = Detector(cfg)
    points = [Point(n, (), 0.0, 1.0) for n in ("quiet.a", "season.a", "keen.a", "other")]
    outcome = detector.process(points)
    assert outcome.disabled.tolist() == [0]
    table = detector.streams
    row = table.rows["season.a"]
    assert table.state.seasonality[row] == 24 and table.state.warmup[row] == 50
    assert detector.forecaster.state.seasonality[row] == 24
    assert detector.state.threshold[table.rows["keen.a"]] == pytest.approx(0.2)


def test_seasonal_stream_is_forecast_from_its_season():
    t = np.arange(24 * 40)
    values = 100 + 20 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(1).normal(0, 0.5, len(t))
    cfg = MonitorConfig.model_validate_json(
        json.dumps({"streams": {"overrides": [{"match": "*", "seasonality": 24}]}})
    )
    scored = run(Detector(cfg), values)
    error = np.abs(scored.expected[-200:] - values[-200:])
    assert error.mean() < 1.5
    assert not scored.anomalous[-200:].any()


def test_memory_per_stream_is_kilobytes():
    detector = Detector(MonitorConfig(), capacity=1000)
    per_stream = detector.nbytes() / 1000
    assert per_stream < 16_000


def test_the_season_detector_knows_what_is_usual_at_each_hour():
    # Five-minute points with a daily rhythm; on day 20 the rhythm stops from 10:00
    # to 14:00 and the stream sits at its daily mean: an ordinary value, but not then.
    step, per_day = 300.0, 288
    t = np.arange(21 * per_day)
    hour = (t % per_day) / 12.0
    values = 100 + 10 * np.sin(2 * np.pi * (hour - 6) / 24) + noisy(len(t), level=0.0)
    flat = slice(20 * per_day + 120, 20 * per_day + 168)
    values[flat] = 100.0
    scored = run(Detector(MonitorConfig()), values, step=step)
    season = scored.contributions[:, DETECTORS.index("season")]
    same_hours_before = slice(19 * per_day + 120, 19 * per_day + 168)
    assert np.median(season[flat]) > 0.6
    assert np.median(season[same_hours_before]) < 0.5
    assert scored.anomalous[flat].any()


def test_value_novelty_is_calibrated_from_its_own_tail_quantile():
    detector = Detector(config(novelty={"tail_quantile": 0.995, "neighbour": 0.25}))
    assert detector.novelty_gate.tail_quantile == 0.995
    assert detector.gate.tail_quantile == MonitorConfig().detector.threshold.tail_quantile
    assert detector.novelty.neighbour == 0.25
    defaults = Detector(MonitorConfig())
    assert defaults.novelty_gate.tail_quantile == 0.99
    assert defaults.novelty.neighbour == 0.5


def test_suppression_margin_comes_from_the_configuration():
    assert Detector(config(suppression_margin=0.1)).suppression.margin == 0.1
    assert Detector(MonitorConfig()).suppression.margin == 0.04


def test_a_stream_that_stays_off_its_usual_value_builds_up_a_season_run():
    # Five-minute points; on day 13 the stream sits 4 standard deviations above its
    # usual value for eight hours, each point alone only mildly unusual: the run it
    # builds up (daily_profile.run_*) makes the later points clearly anomalous to the season
    # detector. A lone spike the next day makes no run.
    step, per_day = 300.0, 288
    values = noisy(15 * per_day)
    off = slice(13 * per_day, 13 * per_day + 96)
    values[off] += 4.0
    spike = 14 * per_day
    values[spike] += 30.0
    season = DETECTORS.index("season")
    runs = run(Detector(MonitorConfig()), values, step=step).contributions[:, season]
    alone = run(Detector(config(daily_profile={"run_scale": 0.0})), values, step=step)
    alone = alone.contributions[:, season]
    late = slice(off.start + 48, off.stop)
    assert np.median(alone[late]) < 0.5
    assert np.median(runs[late]) > 0.8
    np.testing.assert_allclose(runs[: off.start], alone[: off.start])
    np.testing.assert_allclose(runs[spike : spike + 100], alone[spike : spike + 100])


def learns_a_score_of(gate, level: float) -> bool:
    """Whether ``gate``, warm on ordinary raw scores, learns a point scoring ``level``."""
    row, warm = np.array([0]), np.array([True])
    sensitivity = np.array([1.0])  # alert threshold 0.2
    for raw in np.random.default_rng(0).uniform(0.1, 0.4, 400):
        gate.update(row, np.array([raw]), sensitivity, warm)
    start, excess = gate.state.tail_start[0], gate.state.mean_excess[0]
    # The transformed raw value that scores ``level`` under the current tail model.
    y = start + excess * np.log(10.0) * (10.0 * level + np.log10(1.0 - gate.tail_quantile))
    score, threshold = gate.update(row, np.array([-np.expm1(-y)]), sensitivity, warm)
    assert threshold[0] < level == pytest.approx(score[0])
    return bool(gate.state.mean_excess[0] > excess)


def test_novelty_learns_more_of_its_tail_than_the_raw_score():
    # A novelty score of 0.7 (a one-in-10^7 value) above a sensitive threshold is still
    # learned by the default novelty tail model, so a stream whose values keep visiting
    # a rare range learns that its tail is wide; the raw score's tail model keeps such
    # a score out, so an open anomaly does not become normal.
    assert learns_a_score_of(Detector(MonitorConfig()).novelty_gate, 0.7)
    assert not learns_a_score_of(Detector(MonitorConfig()).gate, 0.7)
    assert not learns_a_score_of(Detector(config(novelty={"learn_below": 0.5})).novelty_gate, 0.7)


def test_a_burst_of_usual_spikes_alerts_through_the_rare_value_rate():
    # A spike of +20 every 200 points is rare (0.5 % of values) but usual: no single
    # spike alerts. Five of them within 13 points, none larger, make a burst that the
    # rare-value rate (rare_rate.*) finds; the per-point models alone find nothing.
    values = noisy(4000)
    values[np.arange(75, 4000, 200)] += 20.0
    burst = np.arange(3000, 3015, 3)
    values[burst] += 20.0
    scored = run(Detector(MonitorConfig()), values)
    flagged = np.flatnonzero(scored.anomalous)
    assert len(flagged) and np.isin(flagged, burst).all()
    # The alert says where it came from: the rare-value rate's own score.
    rate = scored.contributions[flagged, CONTRIBUTIONS.index("rare_rate")]
    assert (rate >= scored.threshold[flagged]).all()
    alone = run(Detector(config(rare_rate={"share": 0.0})), values)
    assert not alone.anomalous.any()
    assert Detector(MonitorConfig()).rare_rate.short_fading == 0.03


def test_a_nightly_spike_stops_scoring_and_the_same_spike_at_noon_does_not():
    # Five-minute points with a one-point spike at 03:05 every night: a nightly job.
    # Once it has recurred (detector.recurrence) it scores as the ordinary event it is;
    # the same spike at noon on the last day is as anomalous as ever. Without
    # recurrence the nightly spikes keep scoring high.
    step, per_day = 300.0, 288
    days = 12
    values = noisy(days * per_day)
    nightly = np.arange(3 * 12 + 1, days * per_day, per_day)
    values[nightly] += 12.0
    noon = (days - 1) * per_day + 12 * 12 + 1
    values[noon] += 12.0
    later_nights = nightly[4:]

    scored = run(Detector(MonitorConfig()), values, step=step)
    assert scored.score[later_nights].max() < 0.2
    assert scored.anomalous[noon]

    without = run(Detector(config(recurrence={"days": 0})), values, step=step)
    assert without.score[later_nights].max() > 0.3
    assert without.anomalous[noon]


def test_recurrence_off_keeps_no_state():
    detector = Detector(config(recurrence={"days": 0}))
    assert detector.recurrence is None
    assert "recurrence" not in detector.components()
    assert "recurrence" in Detector(MonitorConfig()).components()


def test_streams_admitted_later_start_from_every_initial_value():
    """New rows are not reset when admitted (their arrays were allocated with their
    initial values); reused rows are. Either way a new stream starts from scratch."""
    detector = Detector(MonitorConfig(), capacity=2)
    ts = 1_700_000_000.0
    for t in range(40):
        detector.process([Point(f"s{i}", (), ts + 60 * t, float(i + t % 5)) for i in range(3)])
    detector.release(detector.streams.remove(np.array([1])))
    # One stream takes the freed row, three more grow the arrays.
    detector.process([Point(f"new{i}", (), ts, 1.0) for i in range(4)])
    rows = np.array([detector.streams.rows[f"new{i}"] for i in range(4)])
    assert sorted(rows.tolist()) == [1, 3, 4, 5]
    fresh = Detector(MonitorConfig(), capacity=8)
    fresh.process([Point(f"new{i}", (), ts, 1.0) for i in range(4)])
    for name, state in detector.components().items():
        for array in state:
            np.testing.assert_array_equal(
                state[array][rows], fresh.components()[name][array][:4], err_msg=f"{name}.{array}"
            )
