"""How long ``sdfkit fit`` takes to end once its output folder is in place: the console script against the
same command left to the interpreter's teardown.

Each run is a short fit (``--steps 20 --no-preview``) in a fresh process. Its end is timed from the output
folder's last change (its modification time: the ``report.json`` written just before the rename that completes
the folder) to the moment the process was reaped. ``console`` is ``python -m sdfkit`` (what the ``sdfkit``
script runs); ``teardown`` calls :func:`sdfkit.cli.main` and lets Python exit as usual. The two alternate.

    python -m benchmarks.command_exit                       # the penguin, 3 rounds
    python -m benchmarks.command_exit --mesh torus --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, SHARED, write_table

WAYS = {
    "console": [sys.executable, "-m", "sdfkit"],
    "teardown": [sys.executable, "-c", "import sys; from sdfkit.cli import main; sys.argv[0] = 'sdfkit'; main()"],
}


def ending_seconds(way: str, mesh: Path, out: Path) -> tuple[float, float]:
    """(seconds from the output folder's last change to the process's end, the whole command's seconds)."""
    cmd = [*WAYS[way], "fit", str(mesh), "--out", str(out), "--device", "cpu", "--force", "--quiet", "--steps",
           "20", "--no-preview"]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    end = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"{way}: sdfkit fit failed: {proc.stderr.strip().splitlines()[-1:]}")
    return end - out.stat().st_mtime, end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default="penguin", help="a name in ../shared/meshes/val")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="command_exit")
    args = parser.parse_args()
    mesh = SHARED / "val" / f"{args.mesh}.obj"
    runs: dict[str, list[tuple[float, float]]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for way in WAYS:
                runs[way].append(ending_seconds(way, mesh, Path(tmp) / way))
    cells = [[way, args.mesh, f"{statistics.median(e for e, _ in r):.2f}",
              ", ".join(f"{e:.2f}" for e, _ in r), ", ".join(f"{w:.1f}" for _, w in r)] for way, r in runs.items()]
    write_table(args.name, "The fit command's end, from its output's last change to the process's exit",
                f"{args.rounds} rounds, the two ways in turn; `sdfkit fit MESH --steps 20 --no-preview` on the CPU.",
                ["way", "mesh", "end s (median)", "end s (each)", "whole command s (each)"], cells,
                {"runs": {way: [{"end_s": e, "wall_s": w} for e, w in r] for way, r in runs.items()}})


if __name__ == "__main__":
    main()
