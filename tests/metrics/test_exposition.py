"""Bulk exposition text: the same value and label text prometheus-client writes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics.exposition import ALLOWUTF8, DOTS, UNDERSCORES
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from monitor.metrics.exposition import (
    ValueTexts,
    escape_label_value,
    family_text,
    format_values,
    label_template,
)
from tests.metrics.fleet import HOSTILE

EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.1,
    1 / 3,
    999_999.999_999,
    1e6,
    1_000_000.5,
    1234567.0,
    9.999_999_999_999_999e15,
    1e16,
    1.5e16,
    -1e6,
    -1234567.0,
    1e-7,
    5e-324,
    1.7976931348623157e308,
    np.nan,
    np.inf,
    -np.inf,
]


def test_format_values_writes_what_prometheus_client_writes_at_the_edges():
    assert format_values(np.array(EDGES)) == [floatToGoString(v) for v in EDGES]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_format_values_writes_what_prometheus_client_writes(values):
    assert format_values(np.array(values, dtype=np.float64)) == [floatToGoString(v) for v in values]


def test_format_values_of_integers_and_empty():
    assert format_values(np.array([0, 3, 2_000_000], dtype=np.int64)) == [
        "0.0",
        "3.0",
        "2e+06",
    ]
    assert format_values(np.zeros(0)) == []


def test_value_texts_reformat_only_changed_values():
    texts = ValueTexts()
    rows = np.arange(5)
    values = np.array([1.0, np.nan, 3.0, np.inf, 5.0])
    assert texts.format(rows, values) == ["1.0", "NaN", "3.0", "+Inf", "5.0"]
    assert texts.reformatted == 5
    assert texts.format(rows, values) == ["1.0", "NaN", "3.0", "+Inf", "5.0"]
    assert texts.reformatted == 0  # NaN compared by its bits: unchanged
    values[2] = 3.5
    assert texts.format(rows[1:], values[1:]) == ["NaN", "3.5", "+Inf", "5.0"]
    assert texts.reformatted == 1
    # A row not asked for keeps its text; a row far beyond grows the cache.
    assert texts.format(np.array([0, 9]), np.array([1.0, 9.0])) == ["1.0", "9.0"]
    assert texts.reformatted == 1
    assert texts.format(np.zeros(0, dtype=np.int64), np.zeros(0)) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_label_values_parse_back(value):
    template, order = label_template(["stream"])
    line = "m" + template.format(escape_label_value(value)) + "1.0\n"
    (family,) = text_string_to_metric_families("# TYPE m gauge\n" + line)
    assert family.samples[0].labels == {"stream": value}


@pytest.mark.parametrize(
    ("escaping", "expected"),
    [
        (UNDERSCORES, '{{a_b="{}",host="{}"}} '),
        (ALLOWUTF8, '{{"a.b"="{}",host="{}"}} '),
        (DOTS, '{{a_dot_b="{}",host="{}"}} '),
    ],
)
def test_label_names_are_escaped_as_negotiated(escaping, expected):
    template, order = label_template(["host", "a.b"], escaping)
    assert (template, order) == (expected, [1, 0])


def test_family_text_counts_label_sets_and_values():
    with pytest.raises(ValueError, match="2 label sets for 1 values"):
        family_text("m", "doc", "gauge", ['{a="1"} ', '{a="2"} '], ["1.0"])


def test_family_text_escapes_help_per_format():
    doc = 'back\\slash "quoted"\nnext'
    text = family_text("m", doc, "gauge", [], [])
    assert text.splitlines()[0] == '# HELP m back\\\\slash "quoted"\\nnext'
    om = family_text("m", doc, "gauge", [], [], openmetrics=True)
    assert om.splitlines()[0] == '# HELP m back\\\\slash \\"quoted\\"\\nnext'
