"""What ``sdfkit fit CLOUD`` starts from and fits: where the codes start, and whether noisy points are denoised.

A variant is ``INIT:DENOISE``: ``INIT`` ``random`` (noise codes and ``fit.steps``) or ``encoder`` (the shipped
encoder reading the cloud's estimated SDF lattice, then ``fit.refine_steps``), ``DENOISE`` ``off``, ``on`` or
``auto`` (:class:`data_prep.points.PointsConfig`). Each cloud (mesh, points, normals, noise) is sampled once and
fitted with every variant at the fit's default step counts, then scored against the original mesh with
``sdfkit eval``'s function. Alongside: the share of the fit's samples whose sign agrees with the exact winding
number of the source mesh, and screened Poisson (depth 9) on the same cloud for scale.

    python -m benchmarks.points_default --meshes penguin --clouds 10000:exact:0.01 100000:exact:0 \\
        --variants random:off encoder:off encoder:on
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, unscored_seconds, write_result, write_result_text
from benchmarks.points import make_cloud, open3d_normals, poisson


def sign_agreement(cloud_file: Path, mesh_unit, sampling, normals: str, denoise: str) -> float:
    """Share of the cloud's fit samples whose sign matches the exact winding number of the unit-frame mesh."""
    from data_prep.sdf import MeshSDF
    from sdfkit.samples import prepare_cloud

    samples = prepare_cloud(cloud_file, sampling, normals, denoise)[0]
    keep = np.flatnonzero(samples.sdf != 0)[:50_000]  # on-surface samples have no side
    exact = MeshSDF(mesh_unit)(samples.points[keep])
    return float(np.mean(np.sign(exact) == np.sign(samples.sdf[keep])))


def main() -> None:
    import trimesh

    from data_prep.mesh import load_mesh
    from data_prep.points import cloud_normalization
    from sdfkit.decoder_io import load_decoder
    from sdfkit.fit import FitRequest, fit_mesh
    from sdfkit.metrics import evaluate_meshes
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin"])
    parser.add_argument("--clouds", nargs="*", default=["10000:exact:0.01", "100000:exact:0"],
                        help="POINTS:NORMALS:NOISE, normals exact or none, noise a fraction of the bbox diagonal")
    parser.add_argument("--variants", nargs="*", default=["random:off", "encoder:off", "encoder:on"])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--volume-points", type=int, default=250_000)
    parser.add_argument("--name", default="points_default")
    args = parser.parse_args()

    rows: list[dict] = []
    _, dec_cfg, _ = load_decoder(None)
    sampling = dec_cfg.sampling.resolve(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.meshes:
            mesh = load_mesh(SHARED / "val" / f"{name}.obj")
            for spec in args.clouds:
                count, normals_kind, noise = spec.split(":")
                points, exact = make_cloud(mesh, int(count), float(noise), cap=False)
                arrays = {"points": points, **({"normals": exact} if normals_kind == "exact" else {})}
                cloud_file = Path(tmp) / f"{name}-{spec.replace(':', '-')}.npz"
                np.savez(cloud_file, **arrays)
                norm = cloud_normalization(points, sampling.radius)
                mesh_unit = trimesh.Trimesh(norm.to_unit(np.asarray(mesh.vertices)), mesh.faces, process=False)
                condition = {"mesh": name, "points": int(count), "normals": normals_kind, "noise": float(noise)}
                for variant in args.variants:
                    init, denoise = variant.split(":")
                    signs = sign_agreement(cloud_file, mesh_unit, sampling, "auto", denoise)
                    opts = FitRequest(init=init, denoise=denoise, resolution=args.resolution, preview=False,
                                      force=True)
                    result = fit_mesh(cloud_file, Path(tmp) / "fit", opts, progress=False)
                    report = result.report
                    seconds = unscored_seconds(report)
                    m = evaluate_meshes(result.recon, mesh, num_volume=args.volume_points)
                    rows.append({**condition, "variant": variant, "chamfer": m["chamfer"], "iou": m["iou"],
                                 "fscore_1pct": m["fscore_1pct"], "seconds": seconds, "steps": report["steps"],
                                 "sign_agreement": signs, "denoised": report["point_cloud"]["denoised"],
                                 "noise_ratio": report["point_cloud"]["noise_ratio"]})
                    print(rows[-1], flush=True)
                    write_result(args.name, {"finished": False, "rows": rows})
                t0 = time.perf_counter()
                recon = poisson(points, exact if normals_kind == "exact" else open3d_normals(points), 9)
                seconds = time.perf_counter() - t0
                m = evaluate_meshes(recon, mesh, num_volume=args.volume_points)
                rows.append({**condition, "variant": "poisson-d9", "chamfer": m["chamfer"], "iou": m["iou"],
                             "fscore_1pct": m["fscore_1pct"], "seconds": seconds})
                print(rows[-1], flush=True)
                write_result(args.name, {"finished": False, "rows": rows})
    path = write_result(args.name, {"finished": True, "rows": rows})
    lines = ["| mesh | points | normals | noise | variant | steps | signs right | CD | IoU | F@1% | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        signs = f"{r['sign_agreement']:.4f}" if "sign_agreement" in r else ""
        lines.append(f"| {r['mesh']} | {r['points']} | {r['normals']} | {r['noise']:g} | {r['variant']} | "
                     f"{r.get('steps', '')} | {signs} | {r['chamfer']:.3e} | {r['iou']:.4f} | "
                     f"{r['fscore_1pct']:.4f} | {r['seconds']:.1f} |")
    write_result_text(args.name, ".md", "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
