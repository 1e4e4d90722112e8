"""Which losses a point cloud's fit uses: the on-surface share of its samples, normal alignment, Eikonal.

The fit's loss is the clamped L1 of every fit; for a cloud, the on-surface zero level enters as samples on the
cloud's points with signed distance 0 (``PointsConfig.surface_fraction``); normal alignment and the Eikonal term
(:mod:`sdfkit.points_loss`) are added at the cloud's points. A variant is ``SHARE:NORMAL:EIKONAL[:POINTS]`` (the
on-surface share, the two weights, and the cloud points the two terms see per step, default 4,096). For each variant and cloud (mesh, points, noise), the same fixed number of steps (not a
time budget, so that load on the machine does not change the result), the shipped decoder, scored against the
original mesh.

    python -m benchmarks.points_loss --meshes penguin --variants 0:0:0 0.1:0:0 0.3:0:0 --noise 0 0.01 --steps 60
    python -m benchmarks.points_loss --meshes penguin --variants 0.1:0:0 0.1:0.1:0 0.1:0:0.1 --noise 0.01
    python -m benchmarks.points_loss --meshes penguin --variants 0.1:0.1:0:4096 0.1:0.1:0:1024 --noise 0 0.01
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import RESULTS, SHARED, machine, write_result
from benchmarks.points import git_commit, make_cloud


def fit_cloud(cloud_file: Path, fraction: float, steps: int, resolution: int, num_points: int | None,
              normal: float = 0.0, eikonal: float = 0.0, surface_points: int = 4096):
    """The steps of ``sdfkit fit CLOUD`` with ``surface_fraction`` set: (mesh in input units, seconds)."""
    import dataclasses

    import trimesh

    from data_prep.points import PointsConfig, prepare_points
    from sdfkit.decoder_io import load_decoder
    from sdfkit.extract import extract_mesh
    from sdfkit.field import NeuralField
    from sdfkit.fit import FitRequest, fit_codes, fit_settings
    from sdfkit.points_loss import SurfaceWeights, surface_loss
    from sdfkit.scene import make_scene

    t0 = time.perf_counter()
    decoder, base, _ = load_decoder(None)
    cfg = fit_settings(base, FitRequest(steps=steps, resolution=resolution))
    if num_points:
        cfg = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, num_points=num_points))
    samples, _, _ = prepare_points(cloud_file, cfg.sampling.resolve(seed=cfg.fit.seed),
                                PointsConfig(surface_fraction=fraction))
    surface = samples.surface_points.astype(np.float64)
    box = trimesh.creation.box(bounds=np.stack([surface.min(axis=0), surface.max(axis=0)]))
    scene = make_scene(samples, cfg, seed=cfg.fit.seed, mesh_unit=box)
    weights = SurfaceWeights(normal=normal, eikonal=eikonal, points=surface_points)
    extra = None
    if weights.active:
        extra = surface_loss(decoder, scene.grid, torch.from_numpy(samples.surface_points),
                             torch.from_numpy(samples.surface_normals), cfg.loss.band, weights, cfg.fit.seed)
    fit_codes(decoder, scene, cfg, extra_loss=extra)
    field = NeuralField(decoder, scene.grid, cfg.loss.band)
    recon = extract_mesh(field, resolution=resolution, bounds=scene.grid.spec.bounds,
                         normalization=samples.normalization)
    return recon, time.perf_counter() - t0


def main() -> None:
    from data_prep.mesh import load_mesh
    from sdfkit.metrics import evaluate_meshes
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin"])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--noise", nargs="*", type=float, default=[0.0, 0.01])
    parser.add_argument("--variants", nargs="*", default=["0:0:0", "0.1:0:0", "0.3:0:0"],
                        help="SHARE:NORMAL:EIKONAL[:POINTS]: on-surface share of samples, normal and Eikonal weights, "
                             "cloud points per step for the two terms")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--num-points", type=int, default=None, help="samples per cloud (default: the fit's)")
    parser.add_argument("--volume-points", type=int, default=250_000)
    parser.add_argument("--name", default="points_loss")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    commit = git_commit()  # the code that runs, not whatever is checked out when the run ends
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.meshes:
            mesh = load_mesh(SHARED / "val" / f"{name}.obj")
            for noise in args.noise:
                points, normals = make_cloud(mesh, args.count, noise, cap=False)
                cloud_file = Path(tmp) / f"{name}-{noise}.npz"
                np.savez(cloud_file, points=points, normals=normals)
                for variant in args.variants:
                    fraction, normal, eikonal, *count = (float(v) for v in variant.split(":"))
                    surface_points = int(count[0]) if count else 4096
                    recon, seconds = fit_cloud(cloud_file, fraction, args.steps, args.resolution, args.num_points,
                                               normal, eikonal, surface_points)
                    m = evaluate_meshes(recon, mesh, num_volume=args.volume_points)
                    row = {"mesh": name, "points": args.count, "noise": noise, "surface_fraction": fraction,
                           "normal_weight": normal, "eikonal_weight": eikonal, "surface_points": surface_points,
                           "chamfer": m["chamfer"], "iou": m["iou"], "fscore_1pct": m["fscore_1pct"],
                           "seconds": seconds}
                    rows.append(row)
                    print(f"{name:10s} noise {noise:<6g} on-surface {fraction:<4g} normal {normal:<4g} "
                          f"eikonal {eikonal:<4g} at {surface_points} CD {m['chamfer']:.3e}  IoU {m['iou']:.4f}  "
                          f"F@1% {m['fscore_1pct']:.4f}  {seconds:.1f} s", flush=True)
    meta = {"command": "python -m benchmarks.points_loss " + " ".join(sys.argv[1:]), "commit": commit,
            "date": started, "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "normals": "exact, in the file"}
    write_result(args.name, {**meta, "rows": rows})
    lines = [f"`{meta['command']}` at commit {meta['commit']}, {meta['date']}, on {machine()} (load average "
             f"{meta['load_before']} before, {meta['load_after']} after); exact normals; {args.steps} steps; "
             f"{args.resolution}^3.", "",
             "| mesh | points | noise | on-surface share | normal weight | Eikonal weight | points per step | CD | IoU | "
             "F@1% | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mesh']} | {r['points']} | {r['noise']:g} | {r['surface_fraction']:g} | "
                     f"{r['normal_weight']:g} | {r['eikonal_weight']:g} | {r.get('surface_points', 4096)} | "
                     f"{r['chamfer']:.3e} | {r['iou']:.4f} | {r['fscore_1pct']:.4f} | {r['seconds']:.1f} |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / (args.name + '.json')} and .md")


if __name__ == "__main__":
    main()
