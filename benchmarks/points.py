"""Point clouds sampled from meshes: `sdfkit fit` against screened Poisson, both scored against the mesh.

For each mesh of ../shared/meshes/val (or --meshes), each point count, each normals condition and each noise
level (plus, with --cap, a cloud with its top cap cut away): sample the mesh's surface, write the cloud to a
file, fit it with sdfkit (the shipped decoder, ``sdfkit fit CLOUD``) and with Open3D's screened Poisson at each
--depths (low-density vertices trimmed at the 1% quantile, as Open3D's documentation does), and score both
against the original mesh with ``sdfkit eval``'s library function (:func:`sdfkit.metrics.evaluate_meshes`).

Normals conditions: ``exact`` the mesh's face normals, in the file; ``estimated`` normals estimated and oriented
by Open3D (k = 16 planes, consistent tangent plane), in the file, used by both methods; ``none`` no normals in
the file: sdfkit estimates and orients its own (``data_prep.points``), Poisson gets Open3D's as for
``estimated``. Noise is Gaussian with the given standard deviation as a fraction of the bounding-box diagonal.
Orientation correctness (share of normals within 90 degrees of the source face's) is recorded for the normals
each method used.

Designs: ``factorial`` every count x normals x noise (plus the holed clouds with --cap); ``ofat`` one factor at a
time around a base cloud (--base-count points, exact normals, clean, closed): each other count, each other normals
condition, each other noise level and the holed cloud, one change at a time, ordered condition by condition over
all meshes so that a run cut short has whole conditions (or, with --order mesh, mesh by mesh). --million-meshes limits the 1,000,000-point clouds to
those meshes (they take longest).

    python -m benchmarks.points --design ofat --million-meshes torus      # every val mesh, one factor at a time
    python -m benchmarks.points --design factorial --cap                   # the full matrix (days on a 2-core CPU)
    python -m benchmarks.points --meshes penguin torus --counts 10000 --normals exact none \\
        --noise 0 0.01 --cap --max-seconds 30 --name points-subset
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, git_commit, unscored_seconds, write_result

#: Share of the mesh's height removed from the top for the holed condition.
CAP_FRACTION = 0.15
#: Open3D's documented trimming: drop vertices whose Poisson density is below this quantile.
DENSITY_QUANTILE = 0.01


def make_cloud(mesh, count: int, noise: float, cap: bool, seed: int = 0):
    """(points, exact normals) sampled on ``mesh`` by area, with Gaussian noise of ``noise`` x bbox diagonal."""
    from data_prep.sampling import sample_surface

    rng = np.random.default_rng(seed)
    points, normals = sample_surface(mesh, count, rng)
    if cap:
        top = mesh.bounds[1, 2] - CAP_FRACTION * (mesh.bounds[1, 2] - mesh.bounds[0, 2])
        keep = points[:, 2] < top
        points, normals = points[keep], normals[keep]
    diagonal = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))
    points = points + rng.normal(size=points.shape) * noise * diagonal
    return points, normals


def open3d_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """Open3D's estimate (k-NN planes) and consistent tangent-plane orientation, turned to face outwards."""
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(k))
    pcd.orient_normals_consistent_tangent_plane(k)
    normals = np.asarray(pcd.normals).copy()
    # Its orientation is consistent but of either sign; take the one enclosing a positive volume.
    if np.einsum("ij,ij->i", points - points.mean(axis=0), normals).sum() < 0:
        normals = -normals
    return normals


def poisson(points: np.ndarray, normals: np.ndarray, depth: int):
    """Open3D screened Poisson at ``depth``, trimmed at the :data:`DENSITY_QUANTILE` of vertex densities."""
    import open3d as o3d
    import trimesh

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    pcd.normals = o3d.utility.Vector3dVector(normals)
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=depth)
    densities = np.asarray(densities)
    mesh.remove_vertices_by_mask(densities < np.quantile(densities, DENSITY_QUANTILE))
    return trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), process=False)


def agreement(normals: np.ndarray, truth: np.ndarray) -> float:
    """Share of ``normals`` within 90 degrees of the source faces' normals (both (n, 3))."""
    return float(np.mean(np.einsum("ij,ij->i", normals, truth) > 0))


def sdfkit_fit(cloud_file: Path, out: Path, normals: str, args) -> tuple:
    import trimesh

    from sdfkit.fit import FitRequest, fit_mesh

    opts = FitRequest(steps=args.steps, max_seconds=args.max_seconds, resolution=args.resolution, preview=False,
                      force=True, normals=normals, config=args.config)
    report = fit_mesh(cloud_file, out, opts, progress=False).report
    seconds = unscored_seconds(report)
    return trimesh.load(out / report["mesh"], force="mesh", process=False), seconds, report


def sdfkit_orientation(cloud_points: np.ndarray, truth: np.ndarray, neighbours: int = 16) -> float:
    """Orientation correctness of sdfkit's own estimated normals on this cloud."""
    from data_prep.points import PointCloud, PointsConfig, orient_cloud

    oriented = orient_cloud(PointCloud(cloud_points), PointsConfig(normals="estimate", neighbours=neighbours,
                                                                    outlier_std=0.0))
    if oriented.thinned:  # the points are means of pairs: each takes the normal of the cloud's point nearest to it
        from scipy.spatial import KDTree

        truth = truth[KDTree(cloud_points).query(oriented.points, workers=-1)[1]]
    return agreement(oriented.normals, truth)


def fit_config(folder: Path, num_points: int | None, fit_settings: list[str]) -> str | None:
    """A config file for ``sdfkit fit`` naming only what it changes: ``num_points`` samples and the ``key=value``
    settings, of the ``fit`` section unless the key names another (``grid.cells_per_object=60``); None: no file. Keys
    it does not name keep the decoder's and the fit's defaults (the refinement's after the encoder among them)."""
    import yaml

    settings: dict[str, dict] = {}
    if num_points is not None:
        settings["sampling"] = {"num_points": num_points}
    for item in fit_settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--fit-setting takes key=value, got '{item}'")
        section, dot, name = key.rpartition(".")
        settings.setdefault(section if dot else "fit", {})[name] = yaml.safe_load(value)
    if not settings:
        return None
    path = folder / "fit.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def run_one(mesh_path: Path, count: int, normals_kind: str, noise: float, cap: bool, args, work: Path) -> list[dict]:
    from data_prep.mesh import load_mesh
    from sdfkit.metrics import evaluate_meshes

    mesh = load_mesh(mesh_path)
    points, exact = make_cloud(mesh, count, noise, cap)
    t0 = time.perf_counter()
    estimated = open3d_normals(points) if normals_kind != "exact" else None
    o3d_normal_seconds = time.perf_counter() - t0
    file_normals = {"exact": exact, "estimated": estimated, "none": None}[normals_kind]
    cloud_file = work / f"{mesh_path.stem}-{count}-{normals_kind}-{noise}{'-cap' if cap else ''}.npz"
    arrays = {"points": points} if file_normals is None else {"points": points, "normals": file_normals}
    np.savez(cloud_file, **arrays)
    condition = {"mesh": mesh_path.stem, "points": len(points), "normals": normals_kind, "noise": noise, "cap": cap}
    rows = []

    recon, seconds, report = sdfkit_fit(cloud_file, work / "fit", "auto", args)
    orientation = (agreement(file_normals, exact) if file_normals is not None
                   else sdfkit_orientation(points, exact))
    m = evaluate_meshes(recon, mesh, num_volume=args.volume_points)
    rows.append({**condition, "method": "sdfkit", "chamfer": m["chamfer"], "iou": m["iou"],
                 "fscore_1pct": m["fscore_1pct"], "seconds": seconds, "orientation": orientation,
                 "sign_trust": report["point_cloud"]["sign_trust"], "steps": report["steps"],
                 "fit_seconds": report["seconds"]["fit"]})
    for depth in args.depths:
        t0 = time.perf_counter()
        normals = exact if normals_kind == "exact" else estimated
        recon = poisson(points, normals, depth)
        seconds = time.perf_counter() - t0 + (o3d_normal_seconds if normals_kind == "none" else 0.0)
        m = evaluate_meshes(recon, mesh, num_volume=args.volume_points)
        rows.append({**condition, "method": f"poisson-d{depth}", "chamfer": m["chamfer"], "iou": m["iou"],
                     "fscore_1pct": m["fscore_1pct"], "seconds": seconds, "orientation": agreement(normals, exact)})
    for r in rows:
        print(f"{r['mesh']:12s} {r['points']:8d} {r['normals']:9s} noise {r['noise']:<6g} cap {int(r['cap'])} "
              f"{r['method']:11s} CD {r['chamfer']:.3e}  IoU {r['iou']:.4f}  F@1% {r['fscore_1pct']:.4f}  "
              f"{r['seconds']:6.1f} s  orient {r['orientation']:.4f}", flush=True)
    return rows


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| mesh | points | normals | noise | cap cut | method | CD | IoU | F@1% | s | of it fitting s "
             "| normals right |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fit_seconds = f"{r['fit_seconds']:.1f}" if "fit_seconds" in r else "-"  # sdfkit's refinement stage
        lines.append(f"| {r['mesh']} | {r['points']} | {r['normals']} | {r['noise']:g} | {'yes' if r['cap'] else ''} | "
                     f"{r['method']} | {r['chamfer']:.3e} | {r['iou']:.4f} | {r['fscore_1pct']:.4f} | "
                     f"{r['seconds']:.1f} | {fit_seconds} | {r['orientation']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=None, help="names in ../shared/meshes/val (default: all)")
    parser.add_argument("--counts", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--normals", nargs="*", default=["exact", "estimated", "none"],
                        choices=["exact", "estimated", "none"])
    parser.add_argument("--noise", nargs="*", type=float, default=[0.0, 0.0025, 0.01],
                        help="Gaussian noise std as a fraction of the bounding-box diagonal")
    parser.add_argument("--cap", action="store_true", help="factorial: also a clean cloud of each count with its top cap "
                        "cut (ofat always has one)")
    parser.add_argument("--design", choices=["factorial", "ofat"], default="factorial")
    parser.add_argument("--order", choices=["condition", "mesh"], default="condition",
                        help="ofat: every mesh for one condition before the next, or every condition of one mesh "
                        "(--meshes order) before the next mesh")
    parser.add_argument("--base-count", type=int, default=100_000, help="ofat: the base cloud's points")
    parser.add_argument("--no-base", action="store_true", help="ofat: only the changed conditions, not the base cloud")
    parser.add_argument("--million-meshes", nargs="*", default=None,
                        help="ofat: run clouds of 1,000,000 points or more only on these meshes (default: all)")
    parser.add_argument("--depths", nargs="*", type=int, default=[9, 10])
    parser.add_argument("--steps", type=int, default=None, help="sdfkit fit steps (default: the fit default)")
    parser.add_argument("--max-seconds", type=float, default=None, help="sdfkit fit time budget")
    parser.add_argument("--resolution", type=int, default=256, help="sdfkit marching-cubes resolution")
    parser.add_argument("--num-points", type=int, default=None, help="sdfkit samples per cloud (default: the fit's)")
    parser.add_argument("--fit-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for sdfkit fit (repeatable): of the fit section, e.g. surface_fraction=0, "
                             "or of the section it names, e.g. grid.cells_per_object=60")
    parser.add_argument("--volume-points", type=int, default=1_000_000, help="IoU samples (protocol: 1,000,000)")
    parser.add_argument("--name", default="points")
    parser.add_argument("--markdown-only", type=Path, default=None, metavar="JSON",
                        help="only rewrite the table beside this result .json")
    args = parser.parse_args()
    if args.markdown_only:
        write_markdown(args.markdown_only)
        return

    if args.depths or "estimated" in args.normals:
        try:  # the baseline and the estimated normals; checked before the first fit rather than after it
            import open3d  # noqa: F401
        except ImportError:
            sys.exit("error: screened Poisson and estimated normals need open3d (pip install -e \".[bench]\")")
    names = args.meshes or sorted(p.stem for p in (SHARED / "val").glob("*.obj"))
    meshes = [SHARED / "val" / f"{name}.obj" for name in names]
    runs = design_runs(args, names)
    load_before = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    rows = []
    meta = {"command": "python -m benchmarks.points " + " ".join(sys.argv[1:]), "commit": git_commit(),
            "date": started, "load_before": round(load_before, 2), "design": args.design,
            "threads": os.environ.get("OMP_NUM_THREADS", "all"), "fit_settings": args.fit_setting}
    with tempfile.TemporaryDirectory() as tmp:
        args.config = fit_config(Path(tmp), args.num_points, args.fit_setting)
        for mesh_index, (count, normals_kind, noise, cap) in runs:
            rows.extend(run_one(meshes[mesh_index], count, normals_kind, noise, cap, args, Path(tmp)))
            shutil.rmtree(Path(tmp) / "fit", ignore_errors=True)
            # Written after every cloud, so that a run cut short keeps what it measured.
            meta["load_after"] = round(os.getloadavg()[0], 2)
            write_markdown(write_result(args.name, {**meta, "finished": False, "rows": rows}))
    write_markdown(write_result(args.name, {**meta, "finished": True, "rows": rows}))


def design_runs(args, names: list[str]) -> list[tuple[int, tuple[int, str, float, bool]]]:
    """(mesh index, (points, normals, noise, cap cut)) of every cloud to run, in running order."""
    if args.design == "factorial":
        conditions = [(c, n, s, False) for c in args.counts for n in args.normals for s in args.noise]
        if args.cap:
            conditions += [(c, "exact", 0.0, True) for c in args.counts]
        return [(m, cond) for m in range(len(names)) for cond in conditions]
    base = (args.base_count, "exact", 0.0, False)
    conditions = [] if args.no_base else [base]
    conditions += [(base[0], "exact", s, False) for s in args.noise if s != base[2]]
    conditions += [(c, "exact", 0.0, False) for c in args.counts if c < base[0]]
    conditions += [(base[0], "exact", 0.0, True)]
    conditions += [(base[0], n, 0.0, False) for n in args.normals if n != base[1]]
    conditions += [(c, "exact", 0.0, False) for c in args.counts if c > base[0]]  # the slowest last
    pairs = ([(m, cond) for cond in conditions for m in range(len(names))] if args.order == "condition"
             else [(m, cond) for m in range(len(names)) for cond in conditions])
    return [(m, cond) for m, cond in pairs
            if cond[0] < 1_000_000 or args.million_meshes is None or names[m] in args.million_meshes]


def write_markdown(json_path: Path) -> None:
    """The table beside a result's .json (also for a run cut short: its rows so far)."""
    data = json.loads(json_path.read_text())
    header = (f"`{data['command']}` at commit {data['commit']}, {data['date']}, on {data['machine']} "
              f"(load average {data['load_before']} before, {data['load_after']} after"
              f"{'' if data.get('finished') else '; the run was stopped after the rows below'}). CD: squared "
              "Chamfer to the original mesh's surface in its unit frame; IoU against the original mesh; s: wall "
              "seconds to the mesh (sdfkit: prepare + fit + extract; Poisson: reconstruction + trimming, plus "
              "Open3D's normal estimation when the file has none); normals right: share of the normals used within "
              "90 degrees of the source face's.")
    json_path.with_suffix(".md").write_text(markdown(data["rows"], header), encoding="utf-8")
    print(f"wrote {json_path} and .md")


if __name__ == "__main__":
    main()
