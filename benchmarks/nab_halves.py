"""NAB scores of the two halves of a labelled corpus: a check that a change is general.

The files, sorted by ``category/name``, are split into the even and the odd ones; each
half is replayed through the daemon's detection code (as ``monitor evaluate`` does) and
scored on its own, with its own optimised threshold and with the daemon's decisions, for
the three NAB profiles. A change that fits only some files raises one half and lowers the
other.

Run: ``.venv/bin/python benchmarks/nab_halves.py [--config configs/default.yaml]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.config import load_config
from monitor.evaluation import nab
from monitor.evaluation.evaluate import PROFILES, SHORT, score
from monitor.evaluation.replay import find_series, replay

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--data", type=Path, default=NAB / "data")
    parser.add_argument("--labels", type=Path, default=NAB / "labels" / "combined_windows.json")
    args = parser.parse_args()

    config = load_config(args.config)
    windows = nab.load_windows(args.labels)
    series = sorted(find_series(args.data), key=lambda s: s.name)
    replayed = replay(config, series)
    for half, start in (("even", 0), ("odd", 1)):
        part = replayed[start::2]
        metrics, _, _ = score(part, windows, nab.NAB_PROFILES)
        keys = [f"nab.{SHORT[profile]}" for profile in PROFILES]
        cells = [f"{metrics[k + '.optimized']:5.1f} / {metrics[k + '.daemon']:5.1f}" for k in keys]
        print(
            f"{half:<4} ({len(part)} files)  standard {cells[0]}  low FP {cells[1]}  "
            f"low FN {cells[2]}  (optimised / daemon)"
        )


if __name__ == "__main__":
    main()
