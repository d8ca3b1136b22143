"""The detection core the daemon and the evaluator share."""

from monitor.detection.detector import DETECTORS, BatchOutcome, Detector, Scored
from monitor.detection.streams import StreamSettings, StreamTable, resolve_settings

__all__ = [
    "DETECTORS",
    "BatchOutcome",
    "Detector",
    "Scored",
    "StreamSettings",
    "StreamTable",
    "resolve_settings",
]
