"""Vectorised online forecasters (one row per stream)."""

from monitor.time_series.daily_profile import DailyProfile
from monitor.time_series.holt_winters import HoltWinters

__all__ = ["DailyProfile", "HoltWinters"]
