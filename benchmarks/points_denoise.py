"""How a noisy cloud is denoised before its samples: the fit, its neighbourhood size and where orientation runs.

For clouds sampled from a val mesh (points, Gaussian noise as a fraction of the bounding-box diagonal), in the
unit frame: the cloud's noise ratio (what ``denoise: auto`` thresholds, ``data_prep.points.NOISE_RATIO``), and the
mean squared distance from the points to the mesh as read, after projection onto each point's 16-neighbour plane,
after the quadratic height-field fit (:func:`data_prep.points.jet_project`) over 16 to 256 neighbours, and with the
neighbours :func:`data_prep.points.denoise_neighbours` picks; with the source's normals given, the fit without the
neighbours facing away (``jet_project(..., normals)``) over the picked count and over
``FACING_NEIGHBOUR_FACTOR`` times it, and that fit moved back out by :func:`data_prep.points.unshrink` (what a cloud
with normals gets); the mean signed distance (negative: inside) of the last two; the fit over the picked count without
normals, before and after :func:`~data_prep.points.unshrink` (what a cloud without normals gets; the shift takes its
side from the source's normals here, from the oriented estimates in ``sdfkit``). Then the share of normals estimated and oriented
(``data_prep.points.orient_normals``) that face the same way as the source faces, over the noisy points, the
plane-projected points and the height-field points.

    python -m benchmarks.points_denoise --meshes penguin --clouds 10000:0 10000:0.0025 10000:0.01 \\
        100000:0 100000:0.0025 100000:0.01
    python -m benchmarks.points_denoise --sizes --no-orientation --meshes human_woman penguin \\
        --clouds 100000:0.0025 --name points_denoise-facing
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import SHARED, write_result, write_result_text

SIZES = (16, 32, 64, 128, 256)


def main() -> None:
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.points import (
        FACING_NEIGHBOUR_FACTOR,
        denoise_neighbours,
        disc_areas,
        estimate_normals,
        jet_project,
        neighbour_distances,
        neighbour_planes,
        noise_ratio,
        orient_normals,
        unshrink,
    )
    from data_prep.sampling import sample_surface
    from data_prep.sdf import signed_distance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin"])
    parser.add_argument("--clouds", nargs="*", default=["10000:0", "10000:0.0025", "10000:0.01", "100000:0",
                                                        "100000:0.0025", "100000:0.01"])
    parser.add_argument("--orientation-max", type=int, default=20_000,
                        help="orientation is measured on clouds of at most this many points")
    parser.add_argument("--no-orientation", action="store_true", help="do not measure orientation")
    parser.add_argument("--sizes", nargs="*", type=int, default=list(SIZES),
                        help="fixed neighbourhood sizes to measure (none: only the picked ones)")
    parser.add_argument("--name", default="points_denoise")
    args = parser.parse_args()

    def oriented_right(points: np.ndarray, truth: np.ndarray) -> float:
        _, dist, idx = neighbour_distances(points, 16)
        normals = orient_normals(points, estimate_normals(points, 16), idx, disc_areas(dist))
        return float(np.mean(np.einsum("ij,ij->i", normals, truth) > 0))

    rows = []
    for name in args.meshes:
        mesh, _ = normalize_mesh(load_mesh(SHARED / "val" / f"{name}.obj"))
        diagonal = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))

        def msd_bias(points: np.ndarray, mesh=mesh) -> tuple[float, float]:
            sdf = signed_distance(mesh.vertices, mesh.faces, points)
            return float(np.mean(sdf**2)), float(np.mean(sdf))

        def msd(points: np.ndarray) -> float:
            return msd_bias(points)[0]

        for spec in args.clouds:
            count, noise = int(spec.split(":")[0]), float(spec.split(":")[1])
            rng = np.random.default_rng(0)
            points, truth = sample_surface(mesh, count, rng)
            noisy = points + rng.normal(size=points.shape) * noise * diagonal
            tree, dist, idx = neighbour_distances(noisy, 16)
            centroids, normals, spread = neighbour_planes(noisy, idx)
            flat = noisy - np.einsum("ij,ij->i", noisy - centroids, normals)[:, None] * normals
            chosen = denoise_neighbours(tree, noisy, spread, 16)
            row = {"mesh": name, "points": count, "noise": noise, "noise_ratio": noise_ratio(spread, dist),
                   "msd_raw": msd(noisy), "msd_plane16": msd(flat), "chosen": chosen}
            picked = jet_project(noisy, tree, chosen)
            for size in args.sizes:
                if size != chosen:
                    row[f"msd_jet{size}"] = msd(jet_project(noisy, tree, size))
            row[f"msd_jet{chosen}"], row["bias_picked"] = msd_bias(picked)
            row["msd_facing"] = msd(jet_project(noisy, tree, chosen, truth))
            wide = min(FACING_NEIGHBOUR_FACTOR * chosen, count - 1)
            facing_wide = jet_project(noisy, tree, wide, truth)
            row["msd_facing_wide"], row["bias_facing_wide"] = msd_bias(facing_wide)
            row["msd_unshrunk"], row["bias_unshrunk"] = msd_bias(unshrink(noisy, facing_wide, wide, truth, facing=True))
            row["msd_picked_unshrunk"], row["bias_picked_unshrunk"] = msd_bias(
                unshrink(noisy, picked, chosen, truth, facing=False))
            if count <= args.orientation_max and not args.no_orientation:
                row.update(orient_raw=oriented_right(noisy, truth), orient_plane16=oriented_right(flat, truth),
                           orient_jet=oriented_right(picked, truth))
            rows.append(row)
            print(row, flush=True)
            write_result(args.name, {"finished": False, "rows": rows})
    write_result(args.name, {"finished": True, "rows": rows})
    head = ["mesh", "points", "noise", "noise ratio", "raw", "plane 16"] + [f"jet {s}" for s in args.sizes]
    oriented = any("orient_raw" in r for r in rows)
    wide_label = f"facing, {FACING_NEIGHBOUR_FACTOR}x picked"
    head += ["picked", "jet picked", "facing, picked", wide_label, f"{wide_label}, unshrunk", f"mean signed: {wide_label}",
             f"{wide_label}, unshrunk", "jet picked, unshrunk", "mean signed: jet picked", "jet picked, unshrunk"]
    head += ["oriented: raw", "plane 16", "jet picked"] if oriented else []
    lines = ["Mean squared distance to the mesh (unit frame) of the points; mean signed: their mean signed distance "
             "(negative: inside); unshrunk: moved back out by data_prep.points.unshrink; oriented: share of estimated "
             "normals facing as the source faces; facing: the fit leaves out neighbours whose source normal turns "
             "more than 60 degrees from the point's.", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["mesh"], str(r["points"]), f"{r['noise']:g}", f"{r['noise_ratio']:.3f}", f"{r['msd_raw']:.2e}",
                 f"{r['msd_plane16']:.2e}"] + [f"{r[f'msd_jet{s}']:.2e}" for s in args.sizes]
        picked = r[f"msd_jet{r['chosen']}"]
        cells += [str(r["chosen"]), f"{picked:.2e}", f"{r['msd_facing']:.2e}", f"{r['msd_facing_wide']:.2e}"]
        cells += [f"{r[k]:.2e}" for k in ("msd_unshrunk", "bias_facing_wide", "bias_unshrunk", "msd_picked_unshrunk",
                                          "bias_picked", "bias_picked_unshrunk")]
        if oriented:
            cells += [f"{r[k]:.4f}" if k in r else "" for k in ("orient_raw", "orient_plane16", "orient_jet")]
        lines.append("| " + " | ".join(cells) + " |")
    write_result_text(args.name, ".md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
