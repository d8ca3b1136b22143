"""The root of every error the monitor raises on purpose."""


class MonitorError(Exception):
    """Base class of all monitor errors; each subpackage subclasses it."""
