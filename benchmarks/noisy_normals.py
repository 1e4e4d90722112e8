"""How well a cloud without normals gets oriented: the share of its estimated normals facing as the source faces.

For each val mesh and cloud (``count:noise``: points sampled on the mesh in the unit frame, Gaussian noise as a
fraction of the bounding-box diagonal), the cloud goes through :func:`data_prep.points.orient_cloud` with
``normals: estimate`` (what ``sdfkit fit`` does with a file without normals), and the row gives whether it was
denoised, the share of its normals facing the same way as the source face of each point (of the nearest face,
where the cloud was thinned first), and the share of 40,000 queries (half uniform in the box, half
within 2% of the unit frame of the surface) whose sign (:func:`data_prep.points.signed_distance`) matches the mesh's
winding number. ``--thin on off`` runs each cloud with and without ``points.thin_noise``; the row's widest
spread is :func:`data_prep.points.widest_spread` of the cloud as read.

    python -m benchmarks.noisy_normals --meshes penguin hand --clouds 100000:0.01 20000:0.0025
    python -m benchmarks.noisy_normals --meshes penguin --clouds 1000000:0.01 --thin on off
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import SHARED, write_table


def orient_row(mesh, noisy: np.ndarray, truth: np.ndarray, thin: bool, rng: np.random.Generator) -> dict:
    """One cloud through the orientation (with or without thinning), its normals and signs against the mesh."""
    import trimesh

    from data_prep.points import PointCloud, PointsConfig, orient_cloud, signed_distance
    from data_prep.sampling import sample_surface
    from data_prep.sdf import winding_number as mesh_winding_number

    t = time.perf_counter()
    # No outlier removal: each kept normal is compared with its own point's source face.
    cloud = orient_cloud(PointCloud(noisy), PointsConfig(normals="estimate", outlier_std=0.0, thin_noise=thin))
    seconds = time.perf_counter() - t
    if cloud.thinned:  # without normals the points are means of pairs: each is compared with its nearest face
        truth = mesh.face_normals[trimesh.proximity.closest_point(mesh, cloud.points)[2]]
    cos = np.einsum("ij,ij->i", cloud.normals, truth)
    queries = np.concatenate([rng.uniform(-1, 1, (20_000, 3)),
                              sample_surface(mesh, 20_000, rng)[0] + rng.normal(size=(20_000, 3)) * 0.02])
    sdf, _, _ = signed_distance(cloud, queries)
    inside = np.abs(mesh_winding_number(mesh.vertices, mesh.faces, queries)) > 0.5
    return {"thin": thin, "denoised": cloud.denoised, "points used": len(cloud.points),
            "normals right": round(float(np.mean(cos > 0)), 4),
            "signs right": round(float(np.mean((sdf < 0) == inside)), 4), "orient s": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin", "hand", "human_woman", "torus", "sphere"],
                        help="names in ../shared/meshes/val")
    parser.add_argument("--clouds", nargs="*", default=["100000:0.01", "100000:0.0025", "10000:0.01", "20000:0.0025"],
                        help="points:noise (a fraction of the bounding-box diagonal)")
    parser.add_argument("--thin", nargs="*", default=["on"], choices=["on", "off"],
                        help="points.thin_noise: thin a cloud denser than its noise first, or never")
    parser.add_argument("--name", default="noisy_normals")
    args = parser.parse_args()

    from scipy.spatial import KDTree

    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.points import widest_spread
    from data_prep.sampling import sample_surface

    rows = []
    for name in args.meshes:
        mesh, _ = normalize_mesh(load_mesh(SHARED / "val" / f"{name}.obj"))
        diagonal = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))
        for spec in args.clouds:
            count, noise = int(spec.split(":")[0]), float(spec.split(":")[1])
            rng = np.random.default_rng(0)
            points, truth = sample_surface(mesh, count, rng)
            noisy = points + rng.normal(size=points.shape) * noise * diagonal
            cloud = {"mesh": name, "points": count, "noise": noise,
                     "widest spread": round(widest_spread(noisy, KDTree(noisy), 16), 3)}
            for thin in args.thin:
                rows.append({**cloud, **orient_row(mesh, noisy, truth, thin == "on", np.random.default_rng(1))})
                print(rows[-1], flush=True)
    columns = list(rows[0]) if rows else []
    write_table(args.name, "Normals estimated for clouds without them", "Clouds in the unit frame, no outlier removal.",
                columns, [[row[c] for c in columns] for row in rows], {"rows": rows})


if __name__ == "__main__":
    main()
