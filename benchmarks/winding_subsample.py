"""Signs of a large cloud from its whole winding number, or from a subsample's with tangent planes next to it.

    python -m benchmarks.winding_subsample [--meshes penguin human_woman] [--count 1000000] [--queries 250000]

For each mesh of ``../shared/meshes/val``: a clean cloud of ``--count`` points with exact normals (as
``benchmarks/points.py`` makes them), oriented as the fit orients it, and queries of the sampler's kind (80% next to
the cloud, offset by a Gaussian of 0.005 or 0.05 in the unit frame, half each; 20% uniform in the box). Each query's
sign is compared with the mesh's exact sign (:class:`data_prep.sdf.MeshSDF`) three ways: the winding number of the
whole cloud (``winding_points`` = the count), that of the default subsample alone, and the default
(:func:`data_prep.points.signed_distance`: the subsample's winding number, the nearest point's tangent plane within
the subsample's disc radius of the cloud). Seconds are those of :func:`~data_prep.points.signed_distance` on all
queries (nearest points and the winding-number kernel, whose tree it builds).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import SHARED, write_table


def queries_near(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 3): 80% cloud points offset by N(0, 0.005^2) or N(0, 0.05^2) (half each), 20% uniform in [-1.1, 1.1]^3."""
    near = int(0.8 * count)
    base = points[rng.integers(len(points), size=near)]
    scale = rng.choice([0.005, 0.05], size=near)
    return np.concatenate([base + rng.normal(size=base.shape) * scale[:, None],
                           rng.uniform(-1.1, 1.1, size=(count - near, 3))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", default=["penguin", "human_woman"], help="names in ../shared/meshes/val")
    parser.add_argument("--count", type=int, default=1_000_000, help="cloud points")
    parser.add_argument("--queries", type=int, default=250_000)
    parser.add_argument("--name", default="winding_subsample")
    args = parser.parse_args()

    import trimesh

    from benchmarks.points import make_cloud
    from data_prep.mesh import load_mesh
    from data_prep.points import PointCloud, PointsConfig, cloud_normalization, orient_cloud, signed_distance
    from data_prep.sdf import MeshSDF

    default = PointsConfig()
    rows = []
    for name in args.meshes:
        mesh = load_mesh(SHARED / "val" / f"{name}.obj")
        points, normals = make_cloud(mesh, args.count, noise=0.0, cap=False)
        norm = cloud_normalization(points)
        unit_mesh = trimesh.Trimesh(norm.to_unit(np.asarray(mesh.vertices)), mesh.faces, process=False)
        queries = queries_near(norm.to_unit(points), args.queries, np.random.default_rng(1))
        inside = MeshSDF(unit_mesh)(queries) < 0
        row: dict = {"mesh": name, "points": args.count, "queries": args.queries,
                     "subsample": min(default.winding_points, args.count)}
        for key, winding_points in (("whole", args.count), ("default", default.winding_points)):
            cloud = orient_cloud(PointCloud(norm.to_unit(points), normals),
                                 PointsConfig(normals="given", winding_points=winding_points, tangent_reach=0.0))
            t0 = time.perf_counter()
            sdf, winding, _ = signed_distance(cloud, queries, winding_at=np.ones(len(queries), dtype=bool))
            row[f"{key}_s"] = round(time.perf_counter() - t0, 2)
            row[f"{key}_wrong"] = float(np.mean((sdf < 0) != inside))
            if key == "default":
                row["subsample_alone_wrong"] = float(np.mean((winding > 0.5) != inside))
        rows.append(row)
        print(row, flush=True)
    write_table(args.name, "Signs of a large cloud: its whole winding number, or a subsample's with tangent planes "
                "next to it", "Clean clouds with exact normals; wrong: share of queries whose sign differs from the "
                "mesh's exact sign.",
                ["mesh", "points", "queries", "whole cloud: wrong", "whole cloud: s", "subsample alone: wrong",
                 "default (subsample + tangent planes): wrong", "default: s"],
                [[r["mesh"], f"{r['points']:,}", f"{r['queries']:,}", f"{100 * r['whole_wrong']:.3f}%", r["whole_s"],
                  f"{100 * r['subsample_alone_wrong']:.3f}% ({r['subsample']:,} points)",
                  f"{100 * r['default_wrong']:.3f}%", r["default_s"]] for r in rows], {"rows": rows})


if __name__ == "__main__":
    main()
