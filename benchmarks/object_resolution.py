"""Automatic grid resolution of every airplane and chair, and of scene_a.obj: parts, objects, old and new rule.

The old rule sized cells from the median of the large connected components;
the new one first joins components whose boxes come within 1% of the mesh's
diagonal into objects (``data_prep/objects.py``).

    python -m benchmarks.object_resolution
"""

from __future__ import annotations

import os

import numpy as np

from benchmarks.common import RESULTS, SHARED, provenance, write_result
from data_prep.mesh import load_mesh
from data_prep.objects import object_diagonals, part_boxes
from sdfkit.models.latent_grid import auto_resolution

CELLS, MAX_RES = 40.0, 160


def old_resolution(mesh) -> int:
    """The rule before objects: every connected component is an object."""
    lo, hi = part_boxes(mesh)
    diagonals = np.linalg.norm(hi - lo, axis=1)
    cell = float(np.median(diagonals[diagonals >= 0.25 * diagonals.max()])) / CELLS
    return int(np.clip(round(float(np.ptp(mesh.vertices, axis=0).max()) / cell), 8, MAX_RES))


def main() -> None:
    load = os.getloadavg()[0]
    paths = [SHARED / "scene_a.obj"] + sorted(SHARED.glob("airplanes/*/*.ply")) + sorted(SHARED.glob("chairs/*/*.ply"))
    rows = []
    for path in paths:
        mesh = load_mesh(path)
        rows.append({"mesh": str(path.relative_to(SHARED)), "parts": len(part_boxes(mesh)[0]),
                     "objects": len(object_diagonals(mesh)), "old": old_resolution(mesh),
                     "new": auto_resolution(mesh, CELLS, MAX_RES)})
        print(f"{rows[-1]['mesh']:60s} parts {rows[-1]['parts']:5d} objects {rows[-1]['objects']:3d} "
              f"old {rows[-1]['old']:4d} new {rows[-1]['new']:4d}")
    summary = {}
    for cat in ("airplanes", "chairs"):
        sel = [r for r in rows if r["mesh"].startswith(cat)]
        summary[cat] = {"meshes": len(sel), **{f"{k}_{f.__name__}": int(f([r[k] for r in sel]))
                                               for k in ("old", "new") for f in (min, max)},
                        "new_median": float(np.median([r["new"] for r in sel]))}
        print(cat, summary[cat])
    path = write_result("object_resolution", {**provenance(load), "cells_per_object": CELLS, "summary": summary,
                                               "rows": rows})
    lines = ["| category | meshes | old rule min-max | new rule min-max | new median |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {s['meshes']} | {s['old_min']}-{s['old_max']} | {s['new_min']}-{s['new_max']} | "
              f"{s['new_median']:g} |" for c, s in summary.items()]
    scene = rows[0]
    lines.append(f"\nscene_a.obj: {scene['parts']} parts, {scene['objects']} objects, resolution {scene['old']} -> "
                 f"{scene['new']}")
    (RESULTS / "object_resolution.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
