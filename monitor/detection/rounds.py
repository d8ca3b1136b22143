"""Apply a polled batch as rounds: each round touches every stream at most once.

A batch holds records of many streams. Sorting the records by (stream row,
timestamp) and ranking them within their stream gives rounds: all records of
rank 0 touch distinct rows and can be applied in one vectorised step, then rank
1, and so on, so each stream's points are still applied in time order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plan:
    """How to apply a batch: ``rounds`` of record indices, and the records dropped.

    ``late`` are records not newer than the stream's last applied point;
    ``duplicate`` repeat the timestamp of an earlier record of the same batch.
    """

    rounds: list[np.ndarray]
    late: np.ndarray
    duplicate: np.ndarray


def plan_rounds(rows: np.ndarray, ts: np.ndarray, last_ts: np.ndarray) -> Plan:
    """Split a batch into rounds of distinct rows, in time order within each row.

    ``last_ts`` is the timestamp of each record's stream's last applied point
    (``-inf`` for a new stream).

    >>> plan = plan_rounds(np.array([0, 1, 0, 0, 1]), np.array([3., 1., 2., 2., 0.]),
    ...                    np.array([-np.inf, -np.inf, -np.inf, -np.inf, 0.5]))
    >>> [r.tolist() for r in plan.rounds], plan.late.tolist(), plan.duplicate.tolist()
    ([[2, 1], [0]], [4], [3])
    """
    n = len(rows)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Plan([], empty, empty)
    order = np.lexsort((ts, rows))
    sorted_rows = rows[order]
    sorted_ts = ts[order]
    same_row = np.zeros(n, dtype=bool)
    same_row[1:] = sorted_rows[1:] == sorted_rows[:-1]
    duplicate = same_row & (np.r_[False, sorted_ts[1:] == sorted_ts[:-1]])
    late = ~duplicate & (sorted_ts <= last_ts[order])
    keep = ~(duplicate | late)
    kept = order[keep]
    kept_rows = sorted_rows[keep]
    # Rank of each kept record within its row: position minus the row's first position.
    starts = np.ones(len(kept), dtype=bool)
    starts[1:] = kept_rows[1:] != kept_rows[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(kept)), 0))
    rank = np.arange(len(kept)) - first
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.cumsum(np.bincount(rank))[:-1]
    rounds = np.split(kept[by_rank], bounds) if len(kept) else []
    return Plan(rounds, np.sort(order[late]), np.sort(order[duplicate]))
