"""Deterministic synthetic metric streams with planted anomalies.

Used by the demo, the integration tests and the benchmarks. A series is a level plus a
daily-ish sine plus Gaussian noise; anomalies are planted after a warm-up (never in the
first 40 % of the points) and at least 100 points apart:

* ``spike``: one point at the expected value +/- 8..15 ``sigma_total``;
* ``level_shift``: from its start to the end of the series the level moves by
  +/- 6..10 ``sigma_total``;
* ``dropout``: 10..30 consecutive points with value 0.0 (a metric that stopped
  reporting real numbers).

``sigma_total`` is the standard deviation of the clean signal around the level
(seasonality and noise together). Everything depends only on the seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from monitor.records.base import Labels, stream_key

AnomalyKind = Literal["spike", "level_shift", "dropout", "window"]
"""``window`` marks a labelled anomaly window of a real data set (NAB), kind unknown."""

KINDS: tuple[AnomalyKind, ...] = ("spike", "level_shift", "dropout")
FLEET_METRICS: tuple[str, ...] = ("demo.cpu", "demo.latency_ms", "demo.requests")

WARMUP_FRACTION = 0.4
MIN_GAP = 100
DEFAULT_START_TS = 1_700_000_000.0
DEFAULT_STEP = 60.0
DEFAULT_SEASON_LENGTH = 1440

SPIKE_SIGMAS = (8.0, 15.0)
SHIFT_SIGMAS = (6.0, 10.0)
DROPOUT_LENGTH = (10, 30)
LEVEL_RANGE = (10.0, 1000.0)
AMPLITUDE_FRACTION = (0.02, 0.08)
NOISE_FRACTION = (0.005, 0.02)


@dataclass(frozen=True)
class Anomaly:
    """A planted (or labelled) anomaly: point indices ``start`` to ``end``, end exclusive.

    >>> a = Anomaly("dropout", 900, 915)
    >>> len(a), 905 in a, 915 in a
    (15, True, False)
    """

    kind: AnomalyKind
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"anomaly needs 0 <= start < end, got {self.start}..{self.end}")

    def __len__(self) -> int:
        return self.end - self.start

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int | np.integer) and self.start <= int(index) < self.end


@dataclass(frozen=True, eq=False)
class SyntheticSeries:
    """One metric stream: timestamps, values and where its anomalies are.

    Equality is identity (the fields hold numpy arrays). ``params`` records how a
    synthetic series was made (``level``, ``amplitude``, ``noise_sigma``,
    ``sigma_total``, ``season_length``); it is empty for real data.

    >>> s = make_series("demo.cpu", 1000, seed=1, kinds=("spike",), labels=(("host", "a"),))
    >>> s.key, len(s), [a.kind for a in s.anomalies]
    ('demo.cpu{host=a}', 1000, ['spike'])
    >>> int(s.anomaly_mask().sum())
    1
    """

    name: str
    labels: Labels
    ts: np.ndarray
    values: np.ndarray
    anomalies: tuple[Anomaly, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The stream key, as used for the Kafka record key."""
        return stream_key(self.name, self.labels)

    def __len__(self) -> int:
        return len(self.values)

    def anomaly_mask(self) -> np.ndarray:
        """A boolean array, True at the points inside an anomaly."""
        mask = np.zeros(len(self.values), dtype=bool)
        for anomaly in self.anomalies:
            mask[anomaly.start : anomaly.end] = True
        return mask


def make_series(
    name: str,
    n_points: int,
    seed: int,
    start_ts: float = DEFAULT_START_TS,
    step: float = DEFAULT_STEP,
    kinds: Sequence[AnomalyKind] = (),
    season_length: int = DEFAULT_SEASON_LENGTH,
    labels: Labels = (),
) -> SyntheticSeries:
    """Make one deterministic series with one planted anomaly per entry of ``kinds``.

    The level is drawn log-uniformly from 10..1000, the sine amplitude is 2..8 % and
    the noise sigma 0.5..2 % of the level, so values stay positive. The clean part
    does not depend on ``kinds``: the same seed with ``kinds=()`` gives the same series
    without the anomalies. ``level_shift`` is always planted last (it lasts to the
    end). Raises ``ValueError`` when the anomalies do not fit after the warm-up.

    >>> a = make_series("x", 600, seed=7, kinds=("spike", "dropout", "level_shift"))
    >>> [an.kind for an in a.anomalies]
    ['spike', 'dropout', 'level_shift']
    >>> a.anomalies[0].start >= 240 and a.anomalies[-1].end == 600
    True
    >>> b = make_series("x", 600, seed=7)
    >>> bool(np.array_equal(a.values[:240], b.values[:240])), b.anomalies
    (True, ())
    >>> float(a.ts[1] - a.ts[0])
    60.0
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    if season_length < 1:
        raise ValueError(f"season_length must be >= 1, got {season_length}")
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown anomaly kind {kind!r}; expected one of {KINDS}")
    base_seq, anomaly_seq = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(base_seq)

    level = float(math.exp(rng.uniform(math.log(LEVEL_RANGE[0]), math.log(LEVEL_RANGE[1]))))
    amplitude = level * float(rng.uniform(*AMPLITUDE_FRACTION))
    noise_sigma = level * float(rng.uniform(*NOISE_FRACTION))
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    sigma_total = math.sqrt(amplitude**2 / 2.0 + noise_sigma**2)

    index = np.arange(n_points, dtype=np.float64)
    expected = level + amplitude * np.sin(2.0 * math.pi * index / season_length + phase)
    values = expected + rng.normal(0.0, noise_sigma, size=n_points)
    ts = start_ts + step * index

    anomalies = _plant(values, expected, sigma_total, kinds, np.random.default_rng(anomaly_seq))
    values.flags.writeable = False
    ts.flags.writeable = False
    params = {
        "level": level,
        "amplitude": amplitude,
        "noise_sigma": noise_sigma,
        "sigma_total": sigma_total,
        "season_length": float(season_length),
    }
    return SyntheticSeries(name, tuple(sorted(labels)), ts, values, anomalies, params)


def _plant(
    values: np.ndarray,
    expected: np.ndarray,
    sigma_total: float,
    kinds: Sequence[AnomalyKind],
    rng: np.random.Generator,
) -> tuple[Anomaly, ...]:
    """Plant ``kinds`` into ``values`` in place; return them in time order."""
    if not kinds:
        return ()
    n = len(values)
    ordered = [k for k in kinds if k != "level_shift"] + [k for k in kinds if k == "level_shift"]
    lengths = [
        int(rng.integers(DROPOUT_LENGTH[0], DROPOUT_LENGTH[1] + 1))
        if kind == "dropout"
        else (1 if kind == "spike" else 0)
        for kind in ordered
    ]
    warmup = math.ceil(WARMUP_FRACTION * n)
    # Layout: warm-up, then each anomaly followed by >= MIN_GAP points (for a level
    # shift, which lasts to the end, those are the points it is seen on).
    slack = n - warmup - sum(lengths) - MIN_GAP * len(ordered)
    if slack < 0:
        raise ValueError(
            f"{len(ordered)} anomalies {tuple(ordered)} do not fit in {n} points: they need "
            f"{warmup} warm-up points plus {sum(lengths) + MIN_GAP * len(ordered)} more"
        )
    cuts = np.sort(rng.integers(0, slack + 1, size=len(ordered)))
    extras = np.diff(np.concatenate(([0], cuts))).tolist()

    planted: list[Anomaly] = []
    position = warmup
    for kind, length, extra in zip(ordered, lengths, extras, strict=True):
        start = position + int(extra)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if kind == "spike":
            size = float(rng.uniform(*SPIKE_SIGMAS)) * sigma_total
            values[start] = expected[start] + sign * size
            planted.append(Anomaly("spike", start, start + 1))
        elif kind == "dropout":
            values[start : start + length] = 0.0
            planted.append(Anomaly("dropout", start, start + length))
        else:
            size = float(rng.uniform(*SHIFT_SIGMAS)) * sigma_total
            values[start:] += sign * size
            planted.append(Anomaly("level_shift", start, n))
        position = start + length + MIN_GAP
    return tuple(planted)


def make_fleet(
    n_streams: int,
    n_points: int,
    seed: int,
    start_ts: float = DEFAULT_START_TS,
    step: float = DEFAULT_STEP,
    season_length: int = DEFAULT_SEASON_LENGTH,
    anomalous_fraction: float = 1.0 / 3.0,
) -> list[SyntheticSeries]:
    """Make ``n_streams`` series with unique keys; about a third carry one anomaly.

    Stream ``i`` is metric ``FLEET_METRICS[i % 3]`` (``demo.cpu``, ``demo.latency_ms``,
    ``demo.requests``) of host ``h-0001``, ``h-0002``, ... (three metrics per host).
    ``ceil(anomalous_fraction * n_streams)`` streams, chosen by the seed, get one
    planted anomaly each, the kinds taking turns (spike, level shift, dropout); the
    others are clean, to measure false alerts. All streams share the timestamps.

    >>> fleet = make_fleet(6, 500, seed=3)
    >>> [s.key for s in fleet[:4]]  # doctest: +NORMALIZE_WHITESPACE
    ['demo.cpu{host=h-0001}', 'demo.latency_ms{host=h-0001}',
     'demo.requests{host=h-0001}', 'demo.cpu{host=h-0002}']
    >>> sorted(a.kind for s in fleet for a in s.anomalies)
    ['level_shift', 'spike']
    >>> sum(1 for s in fleet if not s.anomalies)
    4
    """
    if n_streams < 0:
        raise ValueError(f"n_streams must be >= 0, got {n_streams}")
    if not 0.0 <= anomalous_fraction <= 1.0:
        raise ValueError(f"anomalous_fraction must be within [0, 1], got {anomalous_fraction}")
    seeds_seq, pick_seq = np.random.SeedSequence(seed).spawn(2)
    stream_seeds = np.random.default_rng(seeds_seq).integers(0, 2**63 - 1, size=n_streams)
    n_anomalous = min(n_streams, math.ceil(anomalous_fraction * n_streams - 1e-9))
    picked = np.sort(np.random.default_rng(pick_seq).permutation(n_streams)[:n_anomalous])
    kind_of = {int(stream): KINDS[turn % len(KINDS)] for turn, stream in enumerate(picked)}

    fleet: list[SyntheticSeries] = []
    for i in range(n_streams):
        kind = kind_of.get(i)
        fleet.append(
            make_series(
                FLEET_METRICS[i % len(FLEET_METRICS)],
                n_points,
                int(stream_seeds[i]),
                start_ts=start_ts,
                step=step,
                kinds=(kind,) if kind is not None else (),
                season_length=season_length,
                labels=(("host", f"h-{i // len(FLEET_METRICS) + 1:04d}"),),
            )
        )
    return fleet


def interleave_order(series_list: Sequence[SyntheticSeries]) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(series_index, point_index)`` arrays ordered by timestamp.

    Ties go to the lower series index, then the lower point index (a stable sort).

    >>> a = SyntheticSeries("a", (), np.array([0.0, 2.0]), np.array([1.0, 1.0]))
    >>> b = SyntheticSeries("b", (), np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    >>> [arr.tolist() for arr in interleave_order([a, b])]
    [[0, 1, 1, 0], [0, 0, 1, 1]]
    """
    if not series_list:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    lengths = np.fromiter((len(s.ts) for s in series_list), dtype=np.int64, count=len(series_list))
    all_ts = np.concatenate([np.asarray(s.ts, dtype=np.float64) for s in series_list])
    series_index = np.repeat(np.arange(len(series_list), dtype=np.int64), lengths)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    point_index = np.arange(len(all_ts), dtype=np.int64) - np.repeat(offsets, lengths)
    # The concatenation is already in (series, point) order, so a stable sort on the
    # timestamps alone breaks ties by series index, then by point index.
    order = np.argsort(all_ts, kind="stable")
    return series_index[order], point_index[order]


def interleave(series_list: Sequence[SyntheticSeries]) -> Iterator[tuple[int, int]]:
    """Yield ``(series_index, point_index)`` for every point, ordered by timestamp.

    Ties go to the lower series index. The ordering is computed with numpy up front
    (see :func:`interleave_order`), so 1,000 series of 2,000 points take well under
    a second.

    >>> a = SyntheticSeries("a", (), np.array([0.0, 60.0]), np.array([1.0, 2.0]))
    >>> b = SyntheticSeries("b", (), np.array([30.0, 60.0]), np.array([3.0, 4.0]))
    >>> list(interleave([a, b]))
    [(0, 0), (1, 0), (0, 1), (1, 1)]
    """
    series_index, point_index = interleave_order(series_list)
    return zip(series_index.tolist(), point_index.tolist(), strict=True)
