"""Vectorised online forecasters (one row per stream)."""

from monitor.time_series.daily_profile import DailyProfile
from monitor.time_series.holt_winters import HoltWinters
from monitor.time_series.recurrence import DailyRecurrence

__all__ = ["DailyProfile", "DailyRecurrence", "HoltWinters"]
