"""Stray parts of a fitted mesh: connected components that lie away from the input's surface.

Fits each mesh as ``sdfkit fit MESH --steps N`` does (``--padding-cells``: with the shipped settings but that
many cells of the grid's box beyond the shape's, ``grid.padding_cells``), splits the full extracted mesh (before
the fit drops its unsupported parts) into connected components, and for each component other than those touching
the input reports its faces, its distance from the input (cells of the latent grid, from trimesh's closest points)
and where it sits against the grid's box (cells from the nearest face of the box). It scores the mesh both as
extracted and as written.
``--lr`` sets the refinement's peak rate as ``sdfkit fit --lr`` does; ``--seeds`` fits each mesh once per seed
(``sdfkit fit --seed``: its samples and batches), since stray parts come and go with the draws.

    python -m benchmarks.stray_parts --meshes sphere torus --steps 200 300 --name stray_parts-pad1
    python -m benchmarks.stray_parts --meshes sphere torus --steps 200 300 --padding-cells 2 --name stray_parts-pad2
    python -m benchmarks.stray_parts --meshes penguin hand --steps 300 --seeds 0 1 2 3 --name stray_parts-seeds
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.common import REPO, SHARED, write_table
from sdfkit.fit_output import UNSUPPORTED_CELLS

#: A component whose every vertex is farther than this from the input (cells) is counted as stray: the distance
#: at which ``sdfkit fit`` drops a part as unsupported.
STRAY_CELLS = UNSUPPORTED_CELLS


def components(recon, input_mesh, cell: float, lo: np.ndarray, hi: np.ndarray) -> list[dict]:
    """Each connected component of ``recon``: faces, its nearest and farthest vertex from ``input_mesh``
    (cells), and its nearest vertex's distance to the box [lo, hi]'s faces (cells). All in the input's units."""
    import trimesh

    out = []
    for part in recon.split(only_watertight=False):
        _, dist, _ = trimesh.proximity.closest_point(input_mesh, part.vertices)
        to_face = np.minimum(part.vertices - lo, hi - part.vertices).min(axis=1)
        out.append({"faces": len(part.faces), "min_cells": float(dist.min() / cell),
                    "max_cells": float(dist.max() / cell), "box_face_cells": float(to_face.min() / cell),
                    "centroid": [round(float(v), 4) for v in part.vertices.mean(axis=0)]})
    return sorted(out, key=lambda c: -c["faces"])


def fit_all(args: argparse.Namespace, workdir: Path) -> tuple[list[dict], list[list]]:
    """Every (mesh, steps, seed) fit of ``args`` in ``workdir``: the JSON rows and the table cells."""
    from data_prep.yaml_io import load_yaml
    from sdfkit.fit import FitRequest, fit_mesh
    from sdfkit.metrics import evaluate_meshes

    config = None
    if args.padding_cells is not None:
        settings = load_yaml(REPO / "configs" / "shipped.yaml")
        settings["grid"]["padding_cells"] = args.padding_cells
        # A config file's fit section would replace the refinement's own rate and draw (FitConfig.refine_*):
        # only the grid may differ from the user's command.
        settings.pop("fit", None)
        settings.pop("train", None)
        config = workdir / "settings.yaml"
        config.write_text(yaml.safe_dump(settings))
    rows, cells = [], []
    for name, steps, seed in itertools.product(args.meshes, args.steps, args.seeds):
        t = time.perf_counter()
        request = FitRequest(steps=steps, lr=args.lr, seed=seed, config=str(config) if config else None)
        result = fit_mesh(SHARED / "val" / f"{name}.obj", workdir / f"{name}-{steps}-{seed}", request,
                          progress=False)
        seconds = time.perf_counter() - t
        spec, norm = result.field.grid.spec, result.normalization
        cell = spec.cell * norm.scale
        lo, hi = (norm.from_unit(b) for b in spec.bounds)
        # The field's own parts: the mesh as extracted, before the fit dropped the unsupported ones.
        extracted = result.extracted if result.extracted is not None else result.recon
        parts = components(extracted, result.mesh, cell, lo, hi)
        stray = [p for p in parts if p["min_cells"] > STRAY_CELLS]
        report = result.report
        written = report["metrics"]
        as_extracted = evaluate_meshes(extracted, result.mesh) if result.extracted is not None else written
        rows.append({"mesh": name, "steps": steps, "seed": seed, "seconds": seconds,
                     "chamfer": as_extracted["chamfer"], "iou": as_extracted["iou"],
                     "chamfer_written": written["chamfer"], "iou_written": written["iou"],
                     "unsupported_parts": report.get("unsupported_parts"), "grid": report["tiles"],
                     "components": parts})
        cells.append([name, steps, seed, f"{as_extracted['chamfer']:.3e}", f"{as_extracted['iou']:.4f}",
                      f"{written['chamfer']:.3e}", f"{written['iou']:.4f}",
                      report.get("unsupported_parts", {}).get("removed", "-"), len(parts), len(stray),
                      ", ".join(f"{p['faces']} faces at {p['min_cells']:.2f}-{p['max_cells']:.2f} cells, "
                                f"{p['box_face_cells']:.2f} from the box" for p in stray) or "-",
                      f"{seconds:.1f}"])
        print(*cells[-1], flush=True)
    return rows, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", default=["sphere", "torus"], help="names in ../shared/meshes/val")
    parser.add_argument("--steps", nargs="+", type=int, default=[200, 300, 400])
    parser.add_argument("--padding-cells", type=int, default=None,
                        help="grid.padding_cells (default: the shipped settings' own)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="sdfkit fit --seed: one fit per seed")
    parser.add_argument("--lr", type=float, default=None, help="sdfkit fit --lr (default: the refinement's own)")
    parser.add_argument("--name", default="stray_parts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rows, cells = fit_all(args, Path(tmp))
    write_table(args.name, "Stray parts of fitted meshes",
                f"Grid padding: {args.padding_cells or 'shipped'} cells; rate: {args.lr or 'the refinement default'}. "
                f"A part is stray when its every vertex is farther than "
                f"{STRAY_CELLS} cells from the input (trimesh closest points); distances in cells of the latent grid. "
                "'as extracted': the field's whole mesh; 'as written': after the fit dropped the parts that no "
                "surface sample of the input reaches ('dropped').",
                ["mesh", "steps", "seed", "CD as extracted", "IoU", "CD as written", "IoU written", "dropped",
                 "parts", "stray", "stray parts", "s"], cells,
                {"padding_cells": args.padding_cells, "lr": args.lr, "rows": rows})


if __name__ == "__main__":
    main()
