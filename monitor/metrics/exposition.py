"""Exposition text written in bulk: the same bytes prometheus-client writes, much faster.

prometheus-client renders a family sample by sample, each a Python object with a
label dict sorted and escaped on every scrape. Here a family's samples are written
from prebuilt pieces: each stream's label text (escaped once, cached by the
collector) and its values formatted as a list. Both text formats are covered: the
Prometheus format (``text/plain``) and OpenMetrics; label and metric names are
escaped with prometheus-client's own functions for the negotiated ``escaping``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prometheus_client.openmetrics.exposition import (
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.utils import floatToGoString

__all__ = [
    "UNDERSCORES",
    "ValueTexts",
    "escape_label_value",
    "family_text",
    "format_values",
    "label_template",
]

# Go (and prometheus-client) write positive values from 1e6 up to 1e16 with an exponent;
# Python's repr does not. Everything else repr writes as prometheus-client does.
_GO_EXPONENT_FROM, _GO_EXPONENT_BELOW = 1e6, 1e16


def format_values(values: np.ndarray) -> list[str]:
    """The sample value text of each value, exactly as prometheus-client writes it.

    ``repr`` of every float in bulk; the few values it writes differently from
    ``floatToGoString`` (NaN, infinities, and positive values in [1e6, 1e16)) are
    then rewritten one by one.

    >>> format_values(np.array([1.5, 0.0, np.nan, np.inf, -np.inf, 1234567.0, 1e-7, -3e6]))
    ['1.5', '0.0', 'NaN', '+Inf', '-Inf', '1.234567e+06', '1e-07', '-3000000.0']
    """
    floats = np.asarray(values, dtype=np.float64)
    text = list(map(float.__repr__, floats.tolist()))
    odd = ~np.isfinite(floats) | ((floats >= _GO_EXPONENT_FROM) & (floats < _GO_EXPONENT_BELOW))
    for i in np.flatnonzero(odd).tolist():
        text[i] = floatToGoString(floats[i])
    return text


class ValueTexts:
    """The value text of each row, formatted again only when the row's value changed.

    Formatting floats is most of the cost of writing per-stream families; between
    two scrapes many values stay the same (a stream without a new point, a
    threshold that did not move, an event count), so each row's text is kept with
    the bits of the value it was made from. Not thread-safe: callers serialise.

    >>> texts = ValueTexts()
    >>> texts.format(np.array([0, 2]), np.array([1.5, np.nan]))
    ['1.5', 'NaN']
    >>> texts.format(np.array([0, 1, 2]), np.array([1.5, 2.0, 3.0])), texts.reformatted
    (['1.5', '2.0', '3.0'], 2)
    """

    def __init__(self) -> None:
        self.bits = np.zeros(0, dtype=np.int64)
        self.known = np.zeros(0, dtype=bool)
        self.texts: list[str] = []
        self.reformatted = 0
        """Values formatted by the last call."""

    def format(self, rows: np.ndarray, values: np.ndarray) -> list[str]:
        """Texts of ``values``, the values of ``rows`` (distinct, ascending)."""
        floats = np.ascontiguousarray(values, dtype=np.float64)
        if not len(rows):
            self.reformatted = 0
            return []
        size = int(rows[-1]) + 1
        if size > len(self.texts):
            grow = size - len(self.texts)
            self.bits = np.concatenate([self.bits, np.zeros(grow, dtype=np.int64)])
            self.known = np.concatenate([self.known, np.zeros(grow, dtype=bool)])
            self.texts.extend([""] * grow)
        bits = floats.view(np.int64)
        stale = np.flatnonzero(~self.known[rows] | (self.bits[rows] != bits))
        texts = self.texts
        if len(stale):
            changed = rows[stale]
            for row, text in zip(changed.tolist(), format_values(floats[stale]), strict=True):
                texts[row] = text
            self.bits[changed] = bits[stale]
            self.known[changed] = True
        self.reformatted = len(stale)
        if len(rows) == size:  # every row from 0
            return texts[:size]
        return [texts[row] for row in rows.tolist()]


def escape_label_value(value: str) -> str:
    r"""A label value as written between double quotes: ``\``, ``"`` and newline escaped.

    >>> print(escape_label_value('a\\b"c\nd'))
    a\\b\"c\nd
    """
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_template(names: Sequence[str], escaping: str = UNDERSCORES) -> tuple[str, list[int]]:
    """A ``str.format`` template of a sample's label set, and the order it takes values in.

    Labels are written sorted by name, as prometheus-client writes them; the
    template ends with ``"} "`` so a sample line is ``name + labels + value``. Fill
    it with the escaped values taken in the returned order.

    >>> template, order = label_template(["stream", "host"])
    >>> template, order
    ('{{host="{}",stream="{}"}} ', [1, 0])
    >>> template.format(*("b", "a"))
    '{host="b",stream="a"} '
    """
    order = sorted(range(len(names)), key=lambda i: names[i])
    pairs = ",".join(
        escape_label_name(names[i], escaping).replace("{", "{{").replace("}", "}}") + '="{}"'
        for i in order
    )
    return "{{" + pairs + "}} ", order


def family_text(
    name: str,
    documentation: str,
    kind: str,
    labels: Sequence[str],
    values: Sequence[str],
    *,
    openmetrics: bool = False,
    escaping: str = UNDERSCORES,
) -> str:
    r"""One family: HELP and TYPE lines, then one line per (label text, value text).

    ``kind`` is ``gauge`` or ``counter``; a counter's samples are named ``name_total``
    and so is the family in the Prometheus format. ``labels`` are label texts as made
    with :func:`label_template` (including the braces and the trailing space).

    >>> print(family_text("up", 'a "b"', "counter", ['{job="x"} '], ["1.0"]), end="")
    # HELP up_total a "b"
    # TYPE up_total counter
    up_total{job="x"} 1.0
    >>> print(family_text("up", 'a "b"', "counter", [], [], openmetrics=True), end="")
    # HELP up a \"b\"
    # TYPE up counter
    """
    sample = escape_metric_name(name + "_total" if kind == "counter" else name, escaping)
    if openmetrics:
        family = escape_metric_name(name, escaping)
        help_text = escape_label_value(documentation)
    else:
        family = sample
        help_text = documentation.replace("\\", "\\\\").replace("\n", "\\n")
    head = f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n"
    count = len(labels)
    if count != len(values):
        raise ValueError(f"{count} label sets for {len(values)} values")
    # Four pieces a line, filled slice by slice: much faster than a format per line.
    pieces = [sample] * (4 * count)
    pieces[1::4] = labels
    pieces[2::4] = values
    pieces[3::4] = ["\n"] * count
    return head + "".join(pieces)
