"""The CPU targets: one object end to end, and a nine-shape scene, through the ``sdfkit fit`` command.

Each case runs the command a user runs (``sdfkit fit MESH --out DIR``, the
shipped decoder, extraction at 256^3, scoring, preview) in a fresh process on
the CPU and reads its ``report.json``: wall-clock seconds of the whole
command (process start, imports and writing included), seconds per stage,
Chamfer and IoU. A case with a budget passes ``--max-seconds`` to bound the
fitting stage. The load average before and after each case is recorded, so a
figure taken on a busy machine says so.

    python -m benchmarks.cpu_targets                          # penguin as is, in 30 s and 20 s; scene_a in 480 s
    python -m benchmarks.cpu_targets --cases object           # the single object only
    python -m benchmarks.cpu_targets --object ../shared/meshes/val/hand.obj --budgets 0 20 40
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.common import SHARED, machine, timed_fit_command, write_result, write_result_text

#: The targets of the CPU path (seconds, whole command): an object in 30 s, a nine-object scene in 3 minutes.
OBJECT_TARGET_S, SCENE_TARGET_S = 30.0, 180.0


def run_fit(mesh: Path, out: Path, max_seconds: float | None, threads: int | None) -> dict:
    """``sdfkit fit`` in a fresh process on the CPU; its report with the command's wall-clock seconds added."""
    options = ["--max-seconds", str(max_seconds)] if max_seconds is not None else []
    report, wall, load_before = timed_fit_command(mesh, out, options, threads)
    return {
        "mesh": mesh.name, "max_seconds": max_seconds, "wall_s": round(wall, 1), "stages_s": report["seconds"],
        "steps": report["steps"], "batch_points": report["batch_points"], "codes": report["tiles"]["active"],
        "chamfer": report["metrics"]["chamfer"], "iou": report["metrics"]["iou"],
        "fscore_1pct": report["metrics"]["fscore_1pct"],
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
    }


def markdown(rows: list[dict], header: str) -> str:
    # Scoring runs in child processes beside writing and the preview (docs/report.md): its seconds overlap theirs.
    lines = [header, "", "| case | mesh | codes | --max-seconds | steps | prepare s | fit s | extract s | write s | "
             "preview s | score s (beside) | whole command s | target | CD | IoU | load before/after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["stages_s"]
        target = OBJECT_TARGET_S if r["case"] == "object" else SCENE_TARGET_S
        verdict = "met" if r["wall_s"] <= target else "not met"
        lines.append(
            f"| {r['case']} | {r['mesh']} | {r['codes']} | {r['max_seconds'] or '-'} | {r['steps']} | {s['prepare']:.1f} | "
            f"{s['fit']:.1f} | {s['extract']:.1f} | {s.get('write', 0):.1f} | {s.get('preview', 0):.1f} | "
            f"{s['score']:.1f} | {r['wall_s']:.1f} | {target:.0f} s: {verdict} | "
            f"{r['chamfer']:.3e} | {r['iou']:.4f} | {r['load_before']}/{r['load_after']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--scene", type=Path, default=SHARED / "scene_a.obj")
    parser.add_argument("--cases", nargs="*", default=["object", "scene"], choices=["object", "scene"])
    parser.add_argument("--budgets", nargs="*", type=float, default=[0.0, 30.0, 20.0],
                        help="--max-seconds of each object run (0: none, the command's defaults)")
    parser.add_argument("--scene-budgets", nargs="*", type=float, default=[480.0],
                        help="--max-seconds of each scene run (0: none; 600 steps of a nine-shape scene take far "
                             "longer than the target on 2 cores)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the runs (default: torch's)")
    parser.add_argument("--name", default="cpu_targets")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = []
        if "object" in args.cases:
            plan += [("object", args.object, b or None) for b in args.budgets]
        if "scene" in args.cases:
            plan += [("scene", args.scene, b or None) for b in args.scene_budgets]
        for i, (case, mesh, budget) in enumerate(plan):
            row = {"case": case, **run_fit(mesh, Path(tmp) / f"run{i}", budget, args.threads)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            write_result(args.name, {"rows": rows})
    header = f"Machine: {machine()}; `python -m benchmarks.cpu_targets {' '.join(sys.argv[1:])}`".rstrip()
    text = markdown(rows, header)
    write_result_text(args.name, ".md", text)
    print(text)


if __name__ == "__main__":
    main()
