"""The map from stream identity to state row, with each stream's resolved settings."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.config.schema import DetectorConfig, StreamOverride
from monitor.records.base import Labels
from monitor.state import ArraySpec, ArrayState


@dataclass(frozen=True)
class StreamSettings:
    """What a stream gets after per-stream overrides are applied."""

    seasonality: int
    sensitivity: float
    warmup: int
    disabled: bool


def resolve_settings(
    key: str, detector: DetectorConfig, overrides: Sequence[StreamOverride]
) -> StreamSettings:
    """Settings of the stream ``key``: the first override whose glob matches wins.

    >>> from monitor.config.schema import StreamOverride
    >>> rules = [StreamOverride(match="cpu*", sensitivity=0.9), StreamOverride(match="*", warmup=5)]
    >>> resolve_settings('cpu{host=a}', DetectorConfig(), rules).sensitivity
    0.9
    >>> resolve_settings("mem", DetectorConfig(), rules).warmup
    5
    """
    seasonality = detector.forecaster.seasonality
    sensitivity = detector.sensitivity
    warmup = detector.warmup
    for rule in overrides:
        if fnmatch.fnmatchcase(key, rule.match):
            return StreamSettings(
                seasonality if rule.seasonality is None else rule.seasonality,
                sensitivity if rule.sensitivity is None else rule.sensitivity,
                warmup if rule.warmup is None else rule.warmup,
                rule.disabled,
            )
    return StreamSettings(seasonality, sensitivity, warmup, False)


class StreamTable:
    """Assigns each stream a row, at most ``max_streams`` of them.

    Examples
    --------
    >>> table = StreamTable(DetectorConfig(), (), max_streams=2)
    >>> rows, new = table.lookup(["a", "b", "a", "c"], [("a", ()), ("b", ()), ("a", ()), ("c", ())])
    >>> rows.tolist(), new.tolist(), len(table)
    ([0, 1, 0, -1], [0, 1], 2)
    """

    def __init__(
        self,
        detector: DetectorConfig,
        overrides: Sequence[StreamOverride],
        max_streams: int,
        capacity: int = 1024,
    ) -> None:
        self.detector = detector
        self.overrides = tuple(overrides)
        self.max_streams = max_streams
        self.rows: dict[str, int] = {}
        self.keys: list[str] = []
        self.names: list[str] = []
        self.labels: list[Labels] = []
        self.state = ArrayState(
            {
                "seasonality": ArraySpec((), np.int32, 0),
                "sensitivity": ArraySpec((), np.float64, 0.5),
                "warmup": ArraySpec((), np.int64, 0),
                "disabled": ArraySpec((), np.bool_, False),
                "last_ts": ArraySpec((), np.float64, -np.inf),
            },
            min(capacity, max_streams),
        )

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(
        self, keys: Sequence[str], identities: Sequence[tuple[str, Labels]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``keys`` (``-1`` where the table is full) and the rows created now.

        ``identities`` gives (name, labels) of each key, used only for new streams.
        """
        rows = np.empty(len(keys), dtype=np.int64)
        created: list[int] = []
        table = self.rows
        for i, key in enumerate(keys):
            row = table.get(key)
            if row is None:
                row = self._add(key, *identities[i]) if len(self.keys) < self.max_streams else -1
                if row >= 0:
                    created.append(row)
            rows[i] = row
        return rows, np.asarray(created, dtype=np.int64)

    def _add(self, key: str, name: str, labels: Labels) -> int:
        row = len(self.keys)
        self.state.ensure(row + 1)
        settings = resolve_settings(key, self.detector, self.overrides)
        s = self.state
        s.seasonality[row] = settings.seasonality
        s.sensitivity[row] = settings.sensitivity
        s.warmup[row] = settings.warmup
        s.disabled[row] = settings.disabled
        s.last_ts[row] = -np.inf
        self.rows[key] = row
        self.keys.append(key)
        self.names.append(name)
        self.labels.append(labels)
        return row
