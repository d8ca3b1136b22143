"""Every record of the corpus in ``bad_records`` decodes as the corpus says."""

from __future__ import annotations

from typing import get_args

import pytest

from monitor.records import (
    DECODERS,
    FORMATS,
    REASONS,
    Point,
    RecordRejected,
    get_decoder,
)
from tests.records.bad_records import (
    BAD_RECORDS,
    OVERSIZE_RECORDS,
    TRICKY_GOOD_RECORDS,
    BadRecord,
    GoodRecord,
)


@pytest.mark.parametrize("record", BAD_RECORDS, ids=[r.description for r in BAD_RECORDS])
def test_bad_record_is_rejected_with_its_reason(record: BadRecord) -> None:
    decode = get_decoder(record.format)
    with pytest.raises(RecordRejected) as info:
        decode(record.payload)
    assert info.value.reason == record.reason, info.value.detail
    assert info.value.detail
    assert len(info.value.detail) < 300  # a hostile record cannot bloat the logs


@pytest.mark.parametrize("record", OVERSIZE_RECORDS, ids=[r.description for r in OVERSIZE_RECORDS])
def test_oversize_record_is_rejected_without_echoing_it(record: BadRecord) -> None:
    assert len(record.payload) > 65_536
    with pytest.raises(RecordRejected) as info:
        get_decoder(record.format)(record.payload)
    assert info.value.reason == record.reason
    assert len(info.value.detail) < 300


@pytest.mark.parametrize(
    "record", TRICKY_GOOD_RECORDS, ids=[r.description for r in TRICKY_GOOD_RECORDS]
)
def test_tricky_good_record_is_accepted(record: GoodRecord) -> None:
    points = get_decoder(record.format)(record.payload)
    assert points == list(record.points)
    assert all(type(p) is Point for p in points)


def test_corpus_shape() -> None:
    for description, fmt, payload, reason in BAD_RECORDS:  # plain 4-tuples
        assert isinstance(description, str)
        assert fmt in FORMATS
        assert isinstance(payload, bytes)
        assert reason in REASONS
    for description, fmt, payload, points in TRICKY_GOOD_RECORDS:
        assert isinstance(description, str)
        assert fmt in FORMATS
        assert isinstance(payload, bytes)
        assert points and all(isinstance(p, Point) for p in points)
    descriptions = [r.description for r in BAD_RECORDS] + [
        r.description for r in TRICKY_GOOD_RECORDS
    ]
    assert len(descriptions) == len(set(descriptions))


def test_corpus_covers_every_reason() -> None:
    assert {r.reason for r in BAD_RECORDS} == REASONS


def test_corpus_covers_every_format() -> None:
    assert {r.format for r in BAD_RECORDS} == set(FORMATS)
    assert {r.format for r in TRICKY_GOOD_RECORDS} == set(FORMATS)


def test_reasons_are_lower_snake_case() -> None:
    for reason in REASONS:
        assert reason.isascii() and reason.replace("_", "").isalpha() and reason.islower()


def test_formats_are_the_configurable_ones() -> None:
    from monitor.config.schema import RecordFormat

    assert set(get_args(RecordFormat)) == set(FORMATS)
    assert set(DECODERS) == set(FORMATS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_decoder_returns_the_registered_decoder(fmt: str) -> None:
    assert get_decoder(fmt) is DECODERS[fmt]


@pytest.mark.parametrize("fmt", ["avro", "", "Native", "prometheus", None, 1])
def test_get_decoder_rejects_unknown_formats_with_value_error(fmt: object) -> None:
    with pytest.raises(ValueError, match="native, prometheus-kafka-adapter, telegraf"):
        get_decoder(fmt)  # type: ignore[arg-type]
