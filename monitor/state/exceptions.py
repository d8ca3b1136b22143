"""Errors raised while saving or loading checkpoints."""

from monitor.exceptions import MonitorError


class CheckpointError(MonitorError):
    """A checkpoint could not be written, or a checkpoint file cannot be used.

    ``reason`` says why a file was passed over: ``corrupt`` (unreadable or malformed),
    ``version`` (another format version), ``incompatible`` (other model structure),
    or ``write`` (saving failed).

    >>> CheckpointError("format version 9", reason="version").reason
    'version'
    """

    def __init__(self, message: str, reason: str = "write") -> None:
        super().__init__(message)
        self.reason = reason
