"""Signs far from a cloud through a coarse subsample: how many differ from the whole cloud's, and the seconds saved.

For each val mesh and cloud size, a clean cloud with exact normals (``benchmarks.points.make_cloud``) is oriented
as the fit orients it, and 500,000 samples are placed as the fit places them
(:func:`data_prep.points.sample_positions`, with the on-surface share offset too).
Their winding numbers through the whole cloud are the reference. For each subsample size and reach (in the
subsample's median disc radii), the samples beyond the reach take the subsample's winding number instead: the row
counts those samples, the signs (winding number above 1/2) that differ from the reference, and the seconds of the
two kernel calls (the near samples through the whole cloud, the far ones through the subsample) against one call
over all of them.

    python -m benchmarks.coarse_winding --meshes penguin human_woman --counts 100000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import SHARED, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin", "human_woman"], help="names in ../shared/meshes/val")
    parser.add_argument("--counts", nargs="*", type=int, default=[100_000])
    parser.add_argument("--subsamples", nargs="*", type=int, default=[5_000, 10_000, 20_000])
    parser.add_argument("--reaches", nargs="*", type=float, default=[1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--name", default="coarse_winding")
    args = parser.parse_args()

    from benchmarks.points import make_cloud
    from data_prep.mesh import load_mesh
    from data_prep.points import (
        PointCloud,
        PointsConfig,
        WindingCloud,
        cloud_normalization,
        nearest_points,
        orient_cloud,
        sample_positions,
        winding_number,
    )
    from sdfkit.config import SamplingChoice

    config = SamplingChoice().resolve(seed=0)
    rows = []
    for name in args.meshes:
        source = load_mesh(SHARED / "val" / f"{name}.obj")
        for count in args.counts:
            points, normals = make_cloud(source, count, 0.0, cap=False)
            unit = cloud_normalization(points, config.radius).to_unit(points)
            cloud = orient_cloud(PointCloud(unit, normals), PointsConfig(normals="given", coarse_winding_points=0))
            signs = cloud.signs
            _, near, volume = sample_positions(cloud.points, config, np.random.default_rng(0))
            queries = np.concatenate([near, volume])
            dist, _ = nearest_points(cloud.points, queries)
            t = time.perf_counter()
            whole = winding_number(signs.points, signs.normals, signs.areas, queries)
            whole_s = time.perf_counter() - t
            for most in args.subsamples:
                coarse = WindingCloud.of(signs.points, signs.normals, signs.areas, most, 16)
                radius = float(np.sqrt(np.median(coarse.areas) / np.pi))
                for reach in args.reaches:
                    two = WindingCloud(signs.points, signs.normals, signs.areas, coarse=coarse, beyond=reach * radius)
                    t = time.perf_counter()
                    winding = two.winding(queries, dist)
                    seconds = time.perf_counter() - t
                    far = dist > two.beyond
                    differ = int(np.sum((winding > 0.5) != (whole > 0.5)))
                    rows.append({"mesh": name, "points": count, "subsample": most, "reach": reach,
                                 "beyond": round(two.beyond, 4), "far samples": int(far.sum()),
                                 "signs differing": differ, "whole s": round(whole_s, 2),
                                 "two-level s": round(seconds, 2)})
                    print(rows[-1], flush=True)
    columns = list(rows[0]) if rows else []
    write_table(args.name, "Winding numbers far from a cloud through a coarse subsample",
                "Clean clouds with exact normals; the fit's 500,000 samples; whole s: one kernel call over all of "
                "them through the whole cloud; two-level s: the near ones through the whole cloud and those beyond "
                "the reach through the subsample (each call builds its own tree).",
                columns, [[row[c] for c in columns] for row in rows], {"rows": rows})


if __name__ == "__main__":
    main()
