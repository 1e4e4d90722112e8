"""A cloud's signs next to it from the tangent planes or from the winding number: how often each is wrong, and
what the sampling costs.

    python -m benchmarks.tangent_reach                        # penguin and human_woman, 100,000 and 10,000 points
    python -m benchmarks.tangent_reach --meshes hand --noise 0 0.01 --reaches 0 2

For each mesh of ``../shared/meshes/val``, each cloud (``benchmarks.points.make_cloud``: area-weighted samples of
the mesh with exact normals, optionally with Gaussian noise of a share of the bounding-box diagonal) is put in its
unit frame and oriented as the fit orients it (denoised where it looks noisy). Then, for each ``--reaches`` value
(:attr:`data_prep.points.PointsConfig.tangent_reach`; 0: the winding number everywhere; applied to a denoised
cloud too, which the fit itself signs by the winding number alone), the fit's own sampler
(:func:`data_prep.points.sample_cloud`, the shipped decoder's sampling settings) draws its SDF samples, timed, and
every sample off the cloud's points has its sign compared with the mesh's exact sign
(:class:`data_prep.sdf.MeshSDF`). The samples are the same at every reach: only their signs differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from benchmarks.common import SHARED, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", default=["penguin", "human_woman"], help="names in ../shared/meshes/val")
    parser.add_argument("--counts", nargs="+", type=int, default=[100_000, 10_000])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.0025, 0.01],
                        help="noise standard deviations, shares of the bounding-box diagonal")
    parser.add_argument("--reaches", nargs="+", type=float, default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--name", default="tangent_reach")
    args = parser.parse_args()

    import trimesh

    from benchmarks.points import make_cloud
    from data_prep.mesh import load_mesh
    from data_prep.points import PointCloud, PointsConfig, WindingCloud, cloud_normalization, orient_cloud, sample_cloud
    from data_prep.sdf import MeshSDF
    from sdfkit.decoder_io import load_decoder

    _, shipped, _ = load_decoder(None)
    sampling = shipped.sampling.resolve(seed=0)
    rows = []
    for name in args.meshes:
        mesh = load_mesh(SHARED / "val" / f"{name}.obj")
        for count in args.counts:
            for noise in args.noise:
                points, normals = make_cloud(mesh, count, noise, cap=False)
                norm = cloud_normalization(points)
                unit_mesh = trimesh.Trimesh(norm.to_unit(np.asarray(mesh.vertices)), mesh.faces, process=False)
                config = PointsConfig(normals="given")
                cloud = orient_cloud(PointCloud(norm.to_unit(points), normals), config)
                truth = None
                for reach in args.reaches:
                    signs = WindingCloud.of(cloud.points, cloud.normals, cloud.areas, config.winding_points,
                                            config.neighbours, reach)
                    reached = dataclasses.replace(cloud, winding=signs)
                    t0 = time.perf_counter()
                    samples, sdf, _, _, trust = sample_cloud(reached, sampling,
                                                             dataclasses.replace(config, tangent_reach=reach))
                    seconds = time.perf_counter() - t0
                    off = sdf != 0  # the samples on the points carry no sign
                    if truth is None:
                        truth = MeshSDF(unit_mesh)(samples[off].astype(np.float64)) < 0
                    wrong = (sdf[off] < 0) != truth
                    rows.append({"mesh": name, "points": count, "noise": noise, "denoised": cloud.denoised,
                                 "reach": reach, "near": signs.near, "wrong": float(wrong.mean()),
                                 "seconds": seconds, **trust})
                    print(rows[-1], flush=True)
    cells = [[r["mesh"], f"{r['points']:,}", r["noise"], "yes" if r["denoised"] else "no", r["reach"],
              f"{r['near']:.4f}", f"{100 * r['wrong']:.3f}%", f"{r['seconds']:.1f}", f"{r['ambiguous']:.4f}",
              f"{r['normal_disagreement']:.4f}"] for r in rows]
    write_table(args.name, "A cloud's signs next to it: tangent planes or the winding number",
                "Clouds with exact normals, oriented (and denoised where noisy) as the fit does; the fit's sampler "
                "at each reach; wrong: share of the samples off the points whose sign differs from the mesh's exact "
                "sign; seconds: the sampler's (nearest points, winding numbers, trust check).",
                ["mesh", "points", "noise", "denoised", "tangent reach (disc radii)", "reach (unit frame)", "wrong",
                 "sampler s", "ambiguous", "normal disagreement"], cells, {"rows": rows})


if __name__ == "__main__":
    main()
