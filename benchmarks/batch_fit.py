"""Folder fits one mesh at a time against several meshes' codes refined in one batch: throughput and agreement.

    python -m benchmarks.batch_fit ../shared/meshes/airplanes/val --limit 8 --batch 8 [--steps 100] [--device cpu]

Fits the first ``--limit`` meshes of the folder twice through ``sdfkit fit FOLDER`` (:func:`sdfkit.batch.fit_folder`),
with ``--batch-shapes 1`` and ``--batch-shapes N``, in this process and on the same machine, and reports the
refinement stage's seconds (the stage batching changes), the whole folder's seconds, and each mesh's Chamfer and IoU
under both (the same objective per shape: they should agree up to the order of floating-point sums).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, write_result, write_result_text


def _run(folder: Path, out: Path, batch: int, steps: int | None, device: str) -> tuple[list[dict], float]:
    from sdfkit.batch import fit_folder
    from sdfkit.fit import FitRequest

    t0 = time.perf_counter()
    fit_folder(folder, out, FitRequest(steps=steps, device=device, preview=False, batch_shapes=batch), progress=False)
    wall = time.perf_counter() - t0
    reports = []
    for report_path in sorted(out.glob("*/report.json")):
        report = json.loads(report_path.read_text())
        reports.append({"mesh": report_path.parent.name, "fit_s": report["seconds"]["fit"],
                        "total_s": report["seconds_total"], "chamfer": report["metrics"]["chamfer"],
                        "iou": report["metrics"]["iou"], "codes": report["tiles"]["active"],
                        "steps": report["steps"]})
    return reports, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, default=8, help="Meshes of the folder (the first, by name).")
    parser.add_argument("--batch", type=int, default=8, help="Shapes refined together in the batched run.")
    parser.add_argument("--steps", type=int, default=None, help="Refinement steps (default: the fit's).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    meshes = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".obj", ".ply", ".off", ".stl"))
    meshes = meshes[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="batch_fit-"))
    try:
        subset = work / "meshes"
        subset.mkdir()
        for mesh in meshes:
            (subset / mesh.name).symlink_to(mesh.resolve())
        runs = {}
        for batch in (1, args.batch):
            rows, wall = _run(subset, work / f"b{batch}", batch, args.steps, args.device)
            runs[batch] = {"rows": rows, "wall_s": round(wall, 1), "fit_s": round(sum(r["fit_s"] for r in rows), 1)}
            print(f"batch {batch}: {len(rows)} meshes, refinement {runs[batch]['fit_s']} s, folder {wall:.1f} s",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, many = runs[1], runs[args.batch]
    pairs = list(zip(one["rows"], many["rows"]))
    cd_ratio = [b["chamfer"] / a["chamfer"] for a, b in pairs]
    iou_diff = [b["iou"] - a["iou"] for a, b in pairs]
    name = args.name or f"batch_fit-{args.folder.parent.name}-{args.folder.name}-{args.device}"
    lines = [f"# Folder fit, one mesh at a time against {args.batch} in a batch", "",
             f"Machine: {machine()}; device {args.device}; {len(pairs)} meshes of {args.folder}; steps "
             f"{pairs[0][0]['steps'] if pairs else '-'}.", "",
             "| run | refinement s (all meshes) | whole folder s | meshes per minute (refinement) |", "|---|---|---|---|"]
    for batch, run in ((1, one), (args.batch, many)):
        rate = 60.0 * len(run["rows"]) / max(run["fit_s"], 1e-9)
        lines.append(f"| batch {batch} | {run['fit_s']} | {run['wall_s']} | {rate:.2f} |")
    lines += ["", f"Refinement speed-up of the batch: {one['fit_s'] / max(many['fit_s'], 1e-9):.2f}x. Per mesh, "
              f"the batch's Chamfer over the single fit's: {min(cd_ratio):.4f} to {max(cd_ratio):.4f}; IoU "
              f"differences {min(iou_diff):+.5f} to {max(iou_diff):+.5f}.", "",
              "| mesh | codes | CD alone | CD batch | IoU alone | IoU batch |", "|---|---|---|---|---|---|"]
    lines += [f"| {a['mesh']} | {a['codes']} | {a['chamfer']:.4e} | {b['chamfer']:.4e} | {a['iou']:.4f} | "
              f"{b['iou']:.4f} |" for a, b in pairs]
    text = "\n".join(lines) + "\n"
    print(text)
    write_result(name, {"runs": {str(k): v for k, v in runs.items()}, "cd_ratio": cd_ratio,
                        "iou_diff": [float(np.round(d, 6)) for d in iou_diff]})
    write_result_text(name, ".md", text)


if __name__ == "__main__":
    main()
