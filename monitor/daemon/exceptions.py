"""Errors of the daemon loop."""

from monitor.exceptions import MonitorError


class DaemonError(MonitorError):
    """The daemon cannot go on."""


class DeliveryError(DaemonError):
    """Events or dead letters could not be delivered before shutdown; offsets were not committed."""
