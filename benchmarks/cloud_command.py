"""``sdfkit fit CLOUD`` as a user runs it: clouds sampled from val meshes, the command in a fresh process.

Each cloud (``benchmarks.points.make_cloud``: area-weighted samples of the mesh, optionally with Gaussian noise of a
fraction of the bounding-box diagonal) is written to ``.npz`` with its exact normals, or without normals, and fitted
by ``sdfkit fit CLOUD --out DIR`` at its defaults (preview included) on the CPU. The row records the command's
wall-clock seconds, its stage seconds, the torch threads its report names (``-`` for a report without them), and the
reconstruction scored against the source mesh with the protocol's metrics.

    python -m benchmarks.cloud_command                                    # penguin and hand, 100,000 points
    python -m benchmarks.cloud_command --meshes penguin --noise 0 0.01 --normals exact none
    python -m benchmarks.cloud_command --fit-setting normal_every=2                  # a fit setting changed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, machine, timed_fit_command, write_result, write_result_text


def run_cloud(mesh_name: str, count: int, noise: float, normals: str, work: Path, volume_points: int,
              options: list[str]) -> dict:
    """One cloud through the command (with ``options``), scored against its mesh."""
    import trimesh

    from benchmarks.points import make_cloud
    from data_prep.mesh import load_mesh
    from sdfkit.metrics import evaluate_meshes

    source = load_mesh(SHARED / "val" / f"{mesh_name}.obj")
    points, exact = make_cloud(source, count, noise, cap=False)
    cloud = work / f"{mesh_name}.npz"
    if normals == "exact":
        np.savez(cloud, points=points, normals=exact)
    else:
        np.savez(cloud, points=points)
    out = work / "fit"
    report, wall, load_before = timed_fit_command(cloud, out, options, None)
    recon = trimesh.load(out / report["mesh"], force="mesh", process=False)
    assert isinstance(recon, trimesh.Trimesh)
    metrics = evaluate_meshes(recon, source, num_volume=volume_points)
    return {"mesh": mesh_name, "points": count, "noise": noise, "normals": normals,
            "threads": report.get("threads"), "steps": report["steps"], "stages_s": report["seconds"],
            "thinned_to": report["point_cloud"].get("points_thinned_to"),
            "wall_s": round(wall, 1), "chamfer": metrics["chamfer"], "iou": metrics["iou"],
            "fscore_1pct": metrics["fscore_1pct"], "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2)}


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| mesh | points | noise | normals | thinned to | threads | steps | prepare s | init s | fit s | "
             "extract s | preview s | whole command s | CD | IoU | F@1% | load before/after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["stages_s"]
        lines.append(
            f"| {r['mesh']} | {r['points']} | {r['noise']} | {r['normals']} | {r['thinned_to'] or '-'} | "
            f"{r['threads'] or '-'} | {r['steps']} | "
            f"{s['prepare']:.1f} | {s.get('init', 0):.1f} | {s['fit']:.1f} | {s['extract']:.1f} | "
            f"{s.get('preview', 0):.1f} | {r['wall_s']:.1f} | {r['chamfer']:.3e} | {r['iou']:.4f} | "
            f"{r['fscore_1pct']:.4f} | {r['load_before']}/{r['load_after']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin", "hand"], help="names in ../shared/meshes/val")
    parser.add_argument("--count", type=int, default=100_000, help="points per cloud")
    parser.add_argument("--noise", nargs="*", type=float, default=[0.0],
                        help="Gaussian noise std as a fraction of the bounding-box diagonal")
    parser.add_argument("--normals", nargs="*", default=["exact"], choices=["exact", "none"],
                        help="write the exact normals into the file, or none")
    parser.add_argument("--volume-points", type=int, default=250_000, help="IoU samples (protocol: 1,000,000)")
    parser.add_argument("--fit-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for sdfkit fit (repeatable), as in benchmarks/points.py")
    parser.add_argument("--name", default="cloud_command")
    args = parser.parse_args()

    from benchmarks.points import fit_config

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = fit_config(Path(tmp), None, args.fit_setting)
        options = ["--config", config] if config else []
        for mesh_name in args.meshes:
            for noise in args.noise:
                for normals in args.normals:
                    row = run_cloud(mesh_name, args.count, noise, normals, Path(tmp), args.volume_points, options)
                    rows.append({**row, "fit_settings": args.fit_setting})
                    print(json.dumps(row), flush=True)
                    write_result(args.name, {"rows": rows})
    text = markdown(rows, f"Machine: {machine()}; `python -m benchmarks.cloud_command {' '.join(sys.argv[1:])}`")
    write_result_text(args.name, ".md", text.rstrip() + "\n")
    print(text)


if __name__ == "__main__":
    main()
