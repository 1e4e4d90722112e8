"""Record a finished ``sdfkit fit FOLDER`` run under benchmarks/results: its summary, command and machine.

    python -m benchmarks.record_folder_fit runs/airplanes_val NAME --command "sdfkit fit ..." [--load-before L]

The fit itself runs through the ``sdfkit`` command (what a user runs); this copies its ``summary.csv`` and
``summary.md`` to ``results/NAME.csv`` / ``NAME.md`` and writes ``NAME.json`` with the statistics, the command,
the commit, the machine and the load average (before: as observed when the run started; after: now).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
from pathlib import Path

from benchmarks.common import RESULTS, provenance, write_result
from sdfkit.batch import SUMMARY_CSV, SUMMARY_MD, summary_stats
from sdfkit.metrics import METRIC_KEYS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="the sdfkit command that produced the folder")
    parser.add_argument("--load-before", type=float, default=float("nan"))
    parser.add_argument("--note", default="", help="what the run covers when it was stopped early, and why")
    args = parser.parse_args()
    with open(args.folder / SUMMARY_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    stats = summary_stats([{k: r.get(k, "") for k in ("mesh", *METRIC_KEYS, "seconds")} for r in rows])
    info = provenance(args.load_before if args.load_before == args.load_before else os.getloadavg()[0])
    info["command"] = args.command
    fitted = sum(r["status"] != "failed" for r in rows)
    write_result(args.name, {**info, "meshes": len(rows), "fitted": fitted, "stats": stats,
                             **({"note": args.note} if args.note else {})})
    shutil.copy(args.folder / SUMMARY_CSV, RESULTS / f"{args.name}.csv")
    shutil.copy(args.folder / SUMMARY_MD, RESULTS / f"{args.name}.md")
    print(f"{fitted} of {len(rows)} fitted; median IoU {stats['iou']['median']:.4f}, "
          f"median chamfer {stats['chamfer']['median']:.3e}")


if __name__ == "__main__":
    main()
