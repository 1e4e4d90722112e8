"""Seconds per shape of SDF sampling, exact path vs mesh-to-sdf, and the exact path's accuracy.

Speed: 500,000 samples (default preset) of train/bunny.obj (~60k faces) and
scene_a.obj (~309k faces) through ``prepare_mesh`` with 1 and all processes,
and mesh-to-sdf's ``sample_sdf_near_surface`` on 50,000 points, scaled by 10
to 500,000 (its cost is dominated by per-point work after a fixed scan; the
scaling is stated in the output). Accuracy: for every watertight mesh in
../shared/meshes, sign agreement of the samples with exact generalized winding
numbers (|sdf| > 1e-3, random subset), and the largest distance error against
trimesh.proximity.closest_point on a subset; mesh-to-sdf's sign agreement on
its own samples.

    python -m benchmarks.prep_speed [--points 500000] [--m2s-points 50000] [--check-points 400] [--skip-m2s]

Other jobs may share the machine: timings are noisy.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, machine, write_result

SIGN_BAND = 1e-3


def exact_winding_number(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Sum of signed solid angles / 4 pi (Van Oosterom and Strackee); slow, exact."""
    out = np.zeros(len(points))
    a0, b0, c0 = (vertices[faces[:, k]] for k in range(3))
    for i, p in enumerate(points):
        a, b, c = a0 - p, b0 - p, c0 - p
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        det = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la + np.einsum("ij,ij->i", c, a) * lb
        out[i] = 2.0 * np.arctan2(det, den).sum() / (4.0 * np.pi)
    return out


def time_exact(path: Path, points: int, workers: int) -> dict:
    from data_prep.sampling import prepare_mesh, sampling_preset

    cfg = dataclasses.replace(sampling_preset("default"), num_points=points)
    start = time.perf_counter()
    samples = prepare_mesh(path, cfg, workers=workers)
    return {"seconds": time.perf_counter() - start, "points": len(samples.points)}


def time_mesh_to_sdf(path: Path, points: int, target: int) -> dict:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import mesh_to_sdf

    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import signed_distance

    unit, _ = normalize_mesh(load_mesh(path))
    start = time.perf_counter()
    pts, sdf = mesh_to_sdf.sample_sdf_near_surface(unit, number_of_points=points)
    seconds = time.perf_counter() - start
    exact = signed_distance(unit.vertices, unit.faces, pts)
    clear = np.abs(exact) > SIGN_BAND
    return {"seconds_measured": seconds, "points_measured": points, "seconds_scaled": seconds * target / points,
            "sign_agreement_with_exact": float(np.mean((sdf[clear] < 0) == (exact[clear] < 0)))}


def accuracy(path: Path, check_points: int, seed: int = 0) -> dict:
    import trimesh

    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sampling import sample_mesh, sampling_preset

    mesh = load_mesh(path)
    unit, _ = normalize_mesh(mesh)
    cfg = dataclasses.replace(sampling_preset("default"), num_points=20_000, num_surface=10, seed=seed)
    points, sdf, _, _ = sample_mesh(unit, cfg)
    rng = np.random.default_rng(seed)
    clear = np.flatnonzero(np.abs(sdf) > SIGN_BAND)
    pick = rng.choice(clear, size=min(check_points, len(clear)), replace=False)
    w = exact_winding_number(np.asarray(unit.vertices), np.asarray(unit.faces), points[pick].astype(np.float64))
    near = rng.choice(len(points), size=check_points, replace=False)
    _, reference, _ = trimesh.proximity.closest_point(unit, points[near].astype(np.float64))
    # Samples are stored as float32; the error is that of the float64 result before rounding.
    from data_prep.sdf import unsigned_distance

    d64 = unsigned_distance(unit.vertices, unit.faces, points[near])
    return {"faces": int(len(unit.faces)), "watertight": bool(mesh.is_watertight),
            "sign_agreement_exact_wn": float(np.mean((sdf[pick] < 0) == (w > 0.5))), "sign_points": int(len(pick)),
            "max_distance_error": float(np.abs(d64 - reference).max()),
            "max_distance_error_float32": float(np.abs(np.abs(sdf[near]) - reference).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=500_000)
    parser.add_argument("--m2s-points", type=int, default=50_000)
    parser.add_argument("--check-points", type=int, default=400)
    parser.add_argument("--skip-m2s", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()

    from data_prep.forked import default_workers

    workers = default_workers()
    print(f"machine: {machine()} (shared with other jobs: timings are noisy)")
    speed = {}
    for name in ("train/bunny.obj", "scene_a.obj"):
        row = {f"exact_{w}_workers_s": time_exact(SHARED / name, args.points, w)["seconds"] for w in sorted({1, workers})}
        if not args.skip_m2s:
            m2s = time_mesh_to_sdf(SHARED / name, args.m2s_points, args.points)
            row.update({f"mesh_to_sdf_{args.m2s_points}_measured_s": m2s["seconds_measured"],
                        f"mesh_to_sdf_{args.points}_scaled_s": m2s["seconds_scaled"],
                        "mesh_to_sdf_sign_agreement": m2s["sign_agreement_with_exact"]})
            row["speedup"] = m2s["seconds_scaled"] / min(v for k, v in row.items() if k.startswith("exact_"))
        speed[name] = row
        print(name, " ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    checks = {}
    if not args.skip_accuracy:
        meshes = sorted((SHARED / "train").glob("*.obj")) + sorted((SHARED / "val").glob("*.obj")) + [SHARED / "scene_a.obj"]
        for path in meshes:
            checks[path.relative_to(SHARED).as_posix()] = row = accuracy(path, args.check_points)
            print(path.relative_to(SHARED).as_posix(), " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    out = write_result("prep_speed", {
        "note": f"{args.points} samples per shape, default preset; mesh-to-sdf timed on {args.m2s_points} points "
                f"(sample_sdf_near_surface, sign_method normal) and scaled linearly; machine shared, timings noisy",
        "speed": speed, "accuracy": checks})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
