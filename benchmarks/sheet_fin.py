"""A zero-thickness sheet through the fit: where the refined field dips below zero on it, by steps and draw.

    python -m benchmarks.sheet_fin [--steps 20 400] [--fractions 0 0.9]

The robustness corpus's fin (``tests/corpus.py``: a sphere with one extra triangle on an edge) is fitted through
:func:`sdfkit.fit.fit_mesh` as ``sdfkit fit fin.obj --steps S --resolution 48`` does, with the refinement's share
of points near the surface (``fit.refine_surface_fraction``) set by a config file. The exact SDF touches zero on the
fin without crossing it, so the solid is the sphere alone. Reported per run: the share of 20,000 points on the fin's
triangle (beyond 1.05 radii) where the field is negative, the field's minimum there in cells, and how far the
extracted mesh reaches beyond the sphere's bounds (as a share of its size; the corpus allows 0.06).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import yaml

from benchmarks.common import command, machine, write_result, write_result_text


def _fin_points(mesh_path: Path, normalization, count: int = 20000) -> np.ndarray:
    """(m, 3) unit-frame points on the fin's triangle (the mesh's last face) beyond 1.05 sphere radii."""
    import trimesh

    from tests.corpus import CENTER, RADIUS

    mesh = trimesh.load(mesh_path, force="mesh", process=False)
    a, b, c = np.asarray(mesh.vertices)[np.asarray(mesh.faces)[-1]]
    uv = np.random.default_rng(0).random((count, 2))
    uv[uv.sum(axis=1) > 1] = 1 - uv[uv.sum(axis=1) > 1]
    points = a + uv[:, :1] * (b - a) + uv[:, 1:] * (c - a)
    points = points[np.linalg.norm(points - CENTER, axis=1) > 1.05 * RADIUS]
    return normalization.to_unit(points).astype(np.float32)


def _run(work: Path, step_counts: list[int], fractions: list[float]) -> list[dict]:
    """Fit the fin once per (steps, share near the surface) in ``work``; one row each."""
    from sdfkit.fit import FitRequest, fit_mesh
    from tests.corpus import base_sphere, build_non_manifold

    mesh_path = build_non_manifold(work)
    sphere = np.asarray(base_sphere().bounds)
    size = float((sphere[1] - sphere[0]).max())
    rows = []
    for steps in step_counts:
        for fraction in fractions:
            config = work / f"fit-{fraction}.yaml"
            config.write_text(yaml.safe_dump({"fit": {"refine_surface_fraction": fraction}}))
            result = fit_mesh(mesh_path, work / f"out-{steps}-{fraction}", FitRequest(
                config=str(config), steps=steps, resolution=48, preview=False), progress=False)
            cell = result.field.grid.spec.cell
            field = result.field(_fin_points(mesh_path, result.normalization))
            beyond = float(np.abs(np.asarray(result.recon.bounds) - sphere).max()) / size
            rows.append({"steps": steps, "refine_surface_fraction": fraction, "fin_points": len(field),
                         "negative_share": float((field < 0).mean()), "min_cells": float(field.min() / cell),
                         "beyond_bounds": beyond, "chamfer": result.report["metrics"]["chamfer"],
                         "iou": result.report["metrics"]["iou"]})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 400])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.9])
    parser.add_argument("--name", default="sheet_fin")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sheet_fin-") as tmp:
        rows = _run(Path(tmp), args.steps, args.fractions)
    lines = [f"Machine: {machine()}; `{command()}` (the robustness corpus's fin, "
             "--resolution 48)", "",
             "| steps | refine_surface_fraction | field < 0 on the fin | min on the fin (cells) | mesh beyond the "
             "sphere (of its size) | CD vs the input | IoU |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['steps']} | {r['refine_surface_fraction']:g} | {r['negative_share']:.1%} | {r['min_cells']:.3f} "
              f"| {r['beyond_bounds']:.3f} | {r['chamfer']:.3e} | {r['iou']:.4f} |" for r in rows]
    write_result(args.name, {"rows": rows})
    print(write_result_text(args.name, ".md", "\n".join(lines) + "\n"))


if __name__ == "__main__":
    main()
