"""Stream keys: the cached key is the key built from scratch, and the cache is bounded."""

from __future__ import annotations

import pytest

from monitor.records import base
from monitor.records.base import Point, stream_key


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("cpu", ()),
        ("cpu", (("host", "h1"),)),
        ("cpu", (("host", "h1"), ("dc", "eu"))),
        ("cpu", (("a", 'x,b=y}"\\\n'),)),
        ("cpu{x=1}", ()),
        ("cpu\\{", (("host", "h1"),)),
    ],
)
def test_a_cached_key_equals_the_built_key(name: str, labels: base.Labels) -> None:
    built = base._make_key(name, labels) if labels else base._escape_name(name)
    assert stream_key(name, labels) == built
    assert stream_key(name, labels) == built  # from the cache this time
    assert Point(name, labels, 0.0, 1.0).key == built


def test_labels_given_as_a_list_still_make_a_key() -> None:
    assert stream_key("cpu", [("host", "h1")]) == "cpu{host=h1}"  # type: ignore[arg-type]


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_KEYS", {})
    monkeypatch.setattr(base, "_MAX_KEYS", 3)
    for i in range(10):
        assert stream_key("cpu", (("host", f"h{i}"),)) == f"cpu{{host=h{i}}}"
        assert len(base._KEYS) <= 3


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("a{x=1}", ()), ("a", (("x", "1"),))),
        (("a\\", (("x", "1"),)), ("a\\{x=1}", ())),
        (("a{x=1}", (("y", "2"),)), ("a", (("x", "1}"), ("y", "2")))),
        (("a\\{", ()), ("a\\", (("x", "1"),))),
    ],
)
def test_a_name_that_looks_like_a_key_makes_a_key_of_its_own(
    one: tuple[str, base.Labels], other: tuple[str, base.Labels]
) -> None:
    assert stream_key(*one) != stream_key(*other)


def test_names_without_braces_or_backslashes_are_their_own_key() -> None:
    assert stream_key("cpu.host-1/a b", ()) == "cpu.host-1/a b"
    assert stream_key("cpu{", ()) == "cpu\\{"
