"""Seconds of a point cloud's preparation (``sdfkit fit CLOUD``'s prepare stage) and of its nearest-point queries.

    python -m benchmarks.cloud_prep [--meshes val/penguin.obj val/human_woman.obj] [--counts 10000 100000 1000000]
    python -m benchmarks.cloud_prep --meshes val/penguin.obj --counts 100000 --noise 0 0.01 --prepare-only

For each mesh, count and noise (Gaussian, a fraction of the bounding-box diagonal, as ``benchmarks/points.py``
adds it; a noisy cloud is denoised): a cloud with exact normals sampled on the mesh (as ``benchmarks/points.py`` makes
them) is written to a file and prepared as the fit prepares it (:func:`sdfkit.samples.prepare_cloud`, the default
sampling), timed as a whole. Then the nearest cloud point of every one of its samples is found twice on the same
samples, by scipy's KD-tree (what ``signed_distance`` used before) and by
:func:`data_prep.points.nearest_points` (point-cloud-utils), each timed apart, with the two answers compared; and
the winding-number kernel is called once on 100 queries, which times the tree it builds afresh at every call: over
the whole cloud, and over the points the fit's signs come from (:attr:`data_prep.points.OrientedCloud.signs`, a
subsample of a large cloud).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", default=["val/penguin.obj", "val/human_woman.obj"],
                        help="meshes under ../shared/meshes")
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0],
                        help="Gaussian noise, fractions of the bounding-box diagonal")
    parser.add_argument("--prepare-only", action="store_true", help="time the preparation alone, not the queries")
    parser.add_argument("--name", default="cloud_prep")
    args = parser.parse_args()

    from data_prep.mesh import load_mesh
    from sdfkit.config import SamplingChoice

    sampling = SamplingChoice().resolve(seed=0)
    rows = []
    for name in args.meshes:
        mesh = load_mesh(SHARED / name)
        for count in args.counts:
            for noise in args.noise:
                row = time_cloud(mesh, Path(name).stem, count, noise, sampling, args.prepare_only)
                rows.append(row)
                print(row, flush=True)
    write_table(args.name, "A point cloud's preparation and its nearest-point queries",
                "Clouds with exact normals; the fit's default sampling.",
                ["mesh", "points", "noise", "samples", "denoised", "prepare s", "nearest point: scipy s",
                 "nearest point: point-cloud-utils s", "same distances", "winding number on 100 queries s",
                 "points the signs come from", "their winding number on 100 queries s"],
                [[r["mesh"], f"{r['points']:,}", r.get("noise", 0.0), f"{r['samples']:,}",
                  "yes" if r["denoised"] else "no", r["prepare_s"], r.get("scipy_query_s", "-"),
                  r.get("pcu_query_s", "-"), {True: "yes", False: "no"}.get(r.get("same_distances"), "-"),
                  r.get("winding_tree_s", "-"), f"{r['sign_points']:,}" if "sign_points" in r else "-",
                  r.get("sign_tree_s", "-")] for r in rows], {"rows": rows})


def time_cloud(mesh, name: str, count: int, noise: float, sampling, prepare_only: bool) -> dict:
    """One cloud's row: its preparation's seconds and, unless ``prepare_only``, its queries'."""
    from scipy.spatial import KDTree

    from benchmarks.points import make_cloud
    from data_prep.points import PointCloud, PointsConfig, nearest_points, orient_cloud, winding_number
    from sdfkit.samples import prepare_cloud

    points, normals = make_cloud(mesh, count, noise=noise, cap=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cloud.npz"
        np.savez(path, points=points, normals=normals)
        t0 = time.perf_counter()
        samples, _, info, _, _ = prepare_cloud(path, sampling)
        prepare = time.perf_counter() - t0
    row = {"mesh": name, "points": count, "noise": noise, "samples": len(samples.points),
           "denoised": info["denoised"], "prepare_s": round(prepare, 2)}
    if prepare_only:
        return row
    # The cloud as the samples see it: its surface points are in the unit frame.
    unit = samples.normalization.to_unit(points)
    cloud = orient_cloud(PointCloud(unit, normals), PointsConfig())
    queries = np.asarray(samples.points, dtype=np.float64)
    t0 = time.perf_counter()
    d_scipy, _ = KDTree(cloud.points).query(queries, k=1)
    scipy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    d_pcu, _ = nearest_points(cloud.points, queries)
    pcu_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    winding_number(cloud.points, cloud.normals, cloud.areas, queries[:100])
    winding_s = time.perf_counter() - t0
    signs = cloud.signs  # the points the fit's winding numbers come from (a subsample of a large cloud)
    t0 = time.perf_counter()
    winding_number(signs.points, signs.normals, signs.areas, queries[:100])
    signs_s = time.perf_counter() - t0
    return {**row, "scipy_query_s": round(scipy_s, 2), "pcu_query_s": round(pcu_s, 2),
            "winding_tree_s": round(winding_s, 2), "sign_points": len(signs.points), "sign_tree_s": round(signs_s, 2),
            "same_distances": bool(np.allclose(d_scipy, d_pcu, rtol=0, atol=1e-12))}


if __name__ == "__main__":
    main()
