"""The detection core the daemon and the evaluator share."""

from monitor.detection.detector import (
    CONTRIBUTIONS,
    DETECTORS,
    BatchOutcome,
    Detector,
    Scored,
    StreamSnapshot,
)
from monitor.detection.streams import StreamSettings, StreamTable, resolve_settings

__all__ = [
    "CONTRIBUTIONS",
    "DETECTORS",
    "BatchOutcome",
    "Detector",
    "Scored",
    "StreamSettings",
    "StreamSnapshot",
    "StreamTable",
    "resolve_settings",
]
