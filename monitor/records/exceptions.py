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


class RecordSkipped(RecordRejected):
    """A well-formed record that holds nothing to score.

    Prometheus sends ``NaN`` samples in normal operation: the staleness marker it
    writes when a series disappears (a target goes away, a pod is replaced) and
    the results of expressions such as ``0/0``. Such a record is not an error: the
    daemon counts it in ``monitor_points_dropped_total{reason}`` and neither
    dead-letters nor logs it. Callers that only know :class:`RecordRejected`
    still treat it as a rejection.

    >>> err = RecordSkipped("nan", "NaN sample")
    >>> isinstance(err, RecordRejected), err.reason
    (True, 'nan')
    """
