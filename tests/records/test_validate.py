"""The label checks' cache: repeated label sets are looked up, never wrongly accepted."""

from __future__ import annotations

import pytest

from monitor.records import validate
from monitor.records.exceptions import RecordRejected
from monitor.records.validate import check_labels


def test_repeated_labels_share_one_checked_tuple() -> None:
    first = check_labels({"region": "eu-1", "host": "h-cache-1"})
    again = check_labels({"region": "eu-1", "host": "h-cache-1"})
    assert first == (("host", "h-cache-1"), ("region", "eu-1"))
    assert again is first


@pytest.mark.parametrize(
    ("labels", "detail"),
    [
        ({"host": ["h-cache-2"]}, "must be a string, got array"),
        ({"host": {"v": "h-cache-2"}}, "must be a string, got object"),
        ({"host": "h-cache-2\x00"}, "contains a control character"),
        ({"__host": "h-cache-2"}, "invalid label name"),
    ],
)
def test_a_valid_label_set_in_the_cache_does_not_let_a_bad_one_through(
    labels: dict[str, object], detail: str
) -> None:
    assert check_labels({"host": "h-cache-2"}) == (("host", "h-cache-2"),)
    with pytest.raises(RecordRejected, match=detail) as raised:
        check_labels(labels)
    assert raised.value.reason == "bad_labels"


def test_the_skipped_label_is_part_of_the_cache_key() -> None:
    labels = {"__name__": "up", "job": "cache"}
    assert check_labels(labels, skip="__name__") == (("job", "cache"),)
    with pytest.raises(RecordRejected, match="invalid label name '__name__'"):
        check_labels(labels)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "_VALID_LABELS", {})
    monkeypatch.setattr(validate, "_MAX_VALID_LABELS", 3)
    for i in range(10):
        assert check_labels({"host": f"h-{i}"}) == (("host", f"h-{i}"),)
        assert len(validate._VALID_LABELS) <= 3
