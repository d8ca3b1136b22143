"""Errors raised while decoding and validating input records."""

from monitor.exceptions import MonitorError


class RecordRejected(MonitorError):
    """A record that cannot be decoded or validated.

    ``reason`` is a short, stable, lower_snake_case code used as the
    ``reason`` label of ``monitor_records_rejected_total`` and in the
    dead-letter envelope; ``detail`` says what was expected and what arrived.

    >>> err = RecordRejected("missing_field", "field 'value' is required")
    >>> err.reason, str(err)
    ('missing_field', "missing_field: field 'value' is required")
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
