"""Prometheus metrics: per-stream gauges from the state arrays, and the daemon's own."""

from monitor.metrics.daemon import DaemonMetrics
from monitor.metrics.streams import StreamCollector

__all__ = ["DaemonMetrics", "StreamCollector"]
