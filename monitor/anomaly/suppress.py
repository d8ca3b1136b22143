"""Alert suppression: report the onset of an anomaly, not every point of it.

An anomaly usually scores high for several points in a row, and every repeat of an
alert after the first is noise to whoever is paged (NAB counts each one outside a
labelled window as a false positive). :class:`PeakSuppression` wraps the calibrated
scores of a stream: a score passes only when it rises above the stream's recent
peak, which decays back to the current score over about ``span`` points; other
scores are reported as 0. A score that passes sets the peak ``margin`` above itself,
so a burst whose scores creep upwards point by point is reported once, not at every
small rise. It does not depend on any threshold, so whatever cut is applied to its
output sees one detection per burst.
"""

from __future__ import annotations

import numpy as np

from monitor.state import ArraySpec, ArrayState


class PeakSuppression:
    """Pass a score only when it exceeds the stream's decaying recent peak.

    Parameters
    ----------
    span
        Points over which the recent peak decays (by a factor ``e``) towards the
        current score; 0 disables suppression.
    margin
        A score that passes sets the peak this much above itself (>= 0): a later
        score must beat it by more than the margin (0.03 on the calibrated scale:
        about twice as improbable).

    Examples
    --------
    >>> gate = PeakSuppression(span=10)
    >>> row = np.array([0])
    >>> [float(gate.update(row, np.array([s]))[0]) for s in [0.2, 0.9, 0.8, 0.95, 0.3]]
    [0.2, 0.9, 0.0, 0.95, 0.0]
    """

    def __init__(self, span: int = 100, capacity: int = 16, margin: float = 0.0) -> None:
        if span < 0:
            raise ValueError(f"span must be >= 0, got {span}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.span = span
        self.margin = margin
        self.state = ArrayState({"peak": ArraySpec((), np.float64, 0.0)}, capacity)

    def update(
        self, rows: np.ndarray, score: np.ndarray, active: np.ndarray | None = None
    ) -> np.ndarray:
        """Suppressed score of each of ``rows`` (distinct); then remember the peak.

        Rows not ``active`` (streams still warming up) score 0 and remember no peak,
        so the large scores of a model still learning neither alert nor hide the
        first anomalies after it.
        """
        if self.span == 0:
            return score
        self.state.ensure_rows(rows)
        peak = self.state.peak[rows]
        passed = score > peak
        decayed = peak - (peak - score) / self.span
        raised = score + self.margin
        if active is None:
            self.state.peak[rows] = np.where(passed, raised, decayed)
            return np.where(passed, score, 0.0)
        self.state.peak[rows] = np.where(active, np.where(passed, raised, decayed), 0.0)
        return np.where(passed & active, score, 0.0)
