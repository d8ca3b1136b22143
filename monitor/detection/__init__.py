"""The detection core the daemon and the evaluator share."""

from monitor.detection.detector import DETECTORS, BatchOutcome, Detector, Scored, StreamSnapshot
from monitor.detection.streams import StreamSettings, StreamTable, resolve_settings

__all__ = [
    "DETECTORS",
    "BatchOutcome",
    "Detector",
    "Scored",
    "StreamSettings",
    "StreamSnapshot",
    "StreamTable",
    "resolve_settings",
]
