"""`sdfkit fit` with the shipped decoder against the oracle, per mesh and on a composed scene.

For every mesh: fit (decoder frozen), extract at --resolution, score against
the input; extract the exact SDF ("oracle") at the same resolution over the
same box and score it the same way. Prints and writes a table of Chamfer (the
project's protocol), its ratio to the oracle's, IoU, F-score, code count and
seconds per stage.

    python -m benchmarks.fit_quality                      # val meshes + a scene composed from them
    python -m benchmarks.fit_quality --device cuda --name fit_quality-h100
    python -m benchmarks.fit_quality --quick              # two small meshes, 128^3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED, machine, write_result, write_result_text


def oracle_metrics(mesh_path: Path, fit_dir: Path, resolution: int) -> dict:
    """Marching cubes of the exact SDF on the fit's own box and resolution, scored like the fit."""
    from data_prep.mesh import load_mesh
    from data_prep.sdf import MeshSDF
    from sdfkit.extract import extract_mesh
    from sdfkit.fit_output import load_fitted
    from sdfkit.metrics import evaluate_meshes

    fitted = load_fitted(fit_dir)
    gt = load_mesh(mesh_path)
    unit = gt.copy()
    unit.vertices = fitted.normalization.to_unit(gt.vertices)
    t0 = time.perf_counter()
    oracle = extract_mesh(MeshSDF(unit), resolution=resolution, bounds=fitted.bounds, normalization=fitted.normalization)
    seconds = time.perf_counter() - t0
    return {**evaluate_meshes(oracle, gt), "seconds": seconds}


def run(meshes: list[Path], device: str, resolution: int, steps: int | None, work: Path) -> list[dict]:
    from sdfkit.fit import FitRequest, fit_mesh

    rows = []
    for mesh_path in meshes:
        out = work / mesh_path.stem
        opts = FitRequest(device=device, resolution=resolution, steps=steps, preview=False, force=True)
        report = fit_mesh(mesh_path, out, opts, progress=False).report
        oracle = oracle_metrics(mesh_path, out, resolution)
        m = report["metrics"]
        row = {
            "mesh": mesh_path.name, "codes": report["tiles"]["active"], "steps": report["steps"],
            "batch_points": report["batch_points"], "chamfer": m["chamfer"], "oracle_chamfer": oracle["chamfer"],
            "ratio": m["chamfer"] / oracle["chamfer"], "iou": m["iou"], "oracle_iou": oracle["iou"],
            "fscore_1pct": m["fscore_1pct"], "seconds": report["seconds"], "seconds_total": report["seconds_total"],
            "device": report["device"],
        }
        rows.append(row)
        print(f"{row['mesh']:22s} codes {row['codes']:6d}  CD {row['chamfer']:.3e}  oracle {row['oracle_chamfer']:.3e}  "
              f"x{row['ratio']:5.1f}  IoU {row['iou']:.4f}  F@1% {row['fscore_1pct']:.4f}  {row['seconds_total']:7.1f} s",
              flush=True)
    return rows


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| mesh | codes | steps | CD | oracle CD | CD / oracle | IoU | F@1% | fit s | total s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mesh']} | {r['codes']} | {r['steps']} | {r['chamfer']:.3e} | {r['oracle_chamfer']:.3e} | "
                     f"{r['ratio']:.1f} | {r['iou']:.4f} | {r['fscore_1pct']:.4f} | {r['seconds']['fit']:.1f} | {r['seconds_total']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", type=Path, default=None, help="default: every mesh in ../shared/meshes/val")
    parser.add_argument("--no-scene", action="store_true", help="skip the scene composed from the meshes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="sphere and torus only, 128^3, 100 steps, no scene")
    parser.add_argument("--name", default=None, help="result file name (default fit_quality-<device>)")
    args = parser.parse_args()
    from data_prep.compose import compose_scene
    from sdfkit.export import export_mesh
    from sdfkit.runtime import resolve_device

    meshes = args.meshes or sorted((SHARED / "val").glob("*.obj"))
    if args.quick:
        meshes, args.resolution, args.steps, args.no_scene = [SHARED / "val" / "sphere.obj", SHARED / "val" / "torus.obj"], 128, 100, True
    device = str(resolve_device(args.device))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_scene:
            scene = work / "scene_val.obj"
            export_mesh(compose_scene(meshes), scene)
            meshes = meshes + [scene]
        rows = run(meshes, device, args.resolution, args.steps, work)
    name = args.name or f"fit_quality-{device.split(':')[0]}"
    header = f"Resolution {args.resolution}^3, shipped decoder, {machine()}"
    path = write_result(name, {"resolution": args.resolution, "rows": rows})
    write_result_text(name, ".md", markdown(rows, header))
    print(markdown(rows, header))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
