"""Vectorised running statistics over many streams (one row per stream)."""

from monitor.stats.ewm import EWMeanVar
from monitor.stats.rolling import RollingMeanVar

__all__ = ["EWMeanVar", "RollingMeanVar"]
