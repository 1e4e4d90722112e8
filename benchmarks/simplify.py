"""Mesh simplification for ``fit`` and ``mesh --faces``: fast-simplification against pyfqmr.

The mesh is what marching cubes makes of a shape at the fit's default resolution: the exact SDF of
``val/penguin.obj`` extracted at 256^3 (``sdfkit mesh --exact``; a fit's mesh has the same lattice and a
similar face count). Each library simplifies it to each target face count; the script prints and writes the
seconds, the faces reached, the OBJ size, and the Chamfer distance (squared, to the surface, in the input's
unit frame: the protocol of ``docs/metrics.md``) of the simplified mesh to the full one.

    python -m benchmarks.simplify [--mesh ../shared/meshes/val/penguin.obj] [--resolution 256]
        [--targets 200000,100000,50000,25000] [--name simplify-penguin-256]

Other jobs may share the machine: compare seconds only within one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import numpy as np
import trimesh

from benchmarks.common import REPO, SHARED, write_result
from sdfkit.io import atomic_write_text


def git_commit() -> str:
    """The repository's commit (``-dirty`` with uncommitted changes), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def full_mesh(path: str, resolution: int) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """(the input mesh, its exact SDF's marching-cubes mesh at ``resolution``), both in the input's units."""
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import MeshSDF
    from sdfkit.extract import extract_mesh, padded_bounds

    gt = load_mesh(path)
    unit, norm = normalize_mesh(gt)
    mesh = extract_mesh(MeshSDF(unit), resolution=resolution, bounds=padded_bounds(*unit.bounds, resolution),
                        normalization=norm)
    return gt, mesh


def with_fast_simplification(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    import fast_simplification

    vertices, triangles = fast_simplification.simplify(np.asarray(mesh.vertices, dtype=np.float64),
                                                       np.asarray(mesh.faces, dtype=np.int32), target_count=faces)
    return trimesh.Trimesh(vertices, triangles, process=False)


def with_sdfkit(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """What ``fit`` and ``mesh --faces`` run: fast-simplification, then degenerate triangles dropped."""
    from sdfkit.export import simplify_mesh

    return simplify_mesh(mesh, faces)


def with_pyfqmr(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    import pyfqmr

    simplifier = pyfqmr.Simplify()
    simplifier.setMesh(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    simplifier.simplify_mesh(target_count=faces, aggressiveness=7, preserve_border=True, verbose=False)
    vertices, triangles, _ = simplifier.getMesh()
    return trimesh.Trimesh(vertices, triangles, process=False)


LIBRARIES = {"fast-simplification": with_fast_simplification, "pyfqmr": with_pyfqmr, "sdfkit": with_sdfkit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default=str(SHARED / "val" / "penguin.obj"))
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--targets", default="200000,100000,50000,25000")
    parser.add_argument("--name", default="simplify-penguin-256")
    args = parser.parse_args()
    from sdfkit.export import simplification_chamfer

    load_before = os.getloadavg()
    gt, full = full_mesh(args.mesh, args.resolution)
    full_bytes = len(full.export(file_type="obj").encode())
    lines = [f"{os.path.relpath(args.mesh, REPO)} at {args.resolution}^3: {len(full.faces):,} faces, "
             f"OBJ {full_bytes / 1e6:.1f} MB"]
    print(lines[0])
    rows = []
    for simplify in LIBRARIES.values():  # imports and first calls outside the timings
        try:
            simplify(full, len(full.faces) // 2)
        except ImportError:
            pass
    for faces in (int(t) for t in args.targets.split(",")):
        for name, simplify in LIBRARIES.items():
            try:
                t = time.perf_counter()
                small = simplify(full, faces)
                seconds = time.perf_counter() - t
            except ImportError:
                print(f"{name}: not installed, skipped")
                continue
            row = {"library": name, "target_faces": faces, "faces": len(small.faces), "seconds": round(seconds, 3),
                   "obj_bytes": len(small.export(file_type="obj").encode()),
                   "chamfer_to_full": simplification_chamfer(small, full, gt),
                   "watertight": bool(small.is_watertight)}
            rows.append(row)
            lines.append(f"| {name} | {faces:,} | {row['faces']:,} | {seconds:.2f} | {row['obj_bytes'] / 1e6:.1f} | "
                         f"{row['chamfer_to_full']:.2e} | {row['watertight']} |")
            print(lines[-1])
    load_after = os.getloadavg()
    path = write_result(args.name, {
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks.simplify", *sys.argv[1:]]),
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
        "mesh": os.path.relpath(args.mesh, REPO), "resolution": args.resolution,
        "full": {"faces": len(full.faces), "vertices": len(full.vertices), "obj_bytes": full_bytes},
        "rows": rows,
    })
    header = ["", "| library | target faces | faces | seconds | OBJ MB | Chamfer to full | watertight |",
              "|---|---|---|---|---|---|---|"]
    data = json.loads(path.read_text())
    footer = ["", f"{data['machine']}; commit {data['commit']}; {data['date']}; load average before "
              f"{data['load_before']}, after {data['load_after']}; `{data['command']}`"]
    md = path.with_suffix(".md")
    atomic_write_text(md, "\n".join([lines[0], *header, *lines[1:], *footer]) + "\n")
    print(f"wrote {path} and {md}")


if __name__ == "__main__":
    main()
