"""Anomaly detectors and the thresholds that wrap them (one row per stream)."""

from monitor.anomaly.hst import HalfSpaceTrees, build_trees
from monitor.anomaly.threshold import TailThreshold

__all__ = ["HalfSpaceTrees", "TailThreshold", "build_trees"]
