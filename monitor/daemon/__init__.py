"""The daemon loop, its events and dead letters."""

from monitor.daemon.events import AnomalyEvent, event_id
from monitor.daemon.loop import Daemon

__all__ = ["AnomalyEvent", "Daemon", "event_id"]
