"""Points a fitted field is evaluated at by coarse-to-fine extraction, against the skip test's Lipschitz factor.

    python -m benchmarks.extract_points [--mesh ../shared/meshes/val/penguin.obj] [--factors 1.5 1.0 0.5]

Fits the mesh with the defaults (``sdfkit fit``), then extracts the fitted field at 256^3 with each factor
(followed by :func:`sdfkit.extract.follow_surface`, as ``sdfkit fit`` does) and once with the surface left unfollowed;
prints the points evaluated, the seconds, and whether each mesh has the faces of the first factor's mesh. The fewest
points any extraction can evaluate are the corners of the cells the surface crosses, also printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks.common import SHARED, machine, timed_fit_command, write_result, write_result_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.5, 1.0, 0.5])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    import sdfkit.extract as extract
    from sdfkit.fit_output import load_fitted
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    with tempfile.TemporaryDirectory() as tmp:
        timed_fit_command(args.mesh, Path(tmp) / "fit", ["--no-preview"], threads=None)
        fitted = load_fitted(Path(tmp) / "fit")
    field = fitted.field
    runs, reference = [], None
    cases = [(f, True) for f in args.factors] + [(min(args.factors), False)]
    for factor, follow in cases:
        t0 = time.perf_counter()
        with mock.patch.object(extract, "follow_surface", extract.follow_surface if follow else lambda *a, **k: 0):
            grid, count = extract.evaluate_grid_coarse_to_fine(field, args.resolution, fitted.bounds,
                                                               lipschitz_factor=factor, region=field.may_cross)
        seconds = time.perf_counter() - t0
        faces = np.asarray(extract.marching_cubes(grid, fitted.bounds).faces)
        if reference is None:
            reference = faces
            below = grid < 0
            corners = [below[i:i + grid.shape[0] - 1, j:j + grid.shape[1] - 1, k:k + grid.shape[2] - 1]
                       for i in (0, 1) for j in (0, 1) for k in (0, 1)]
            crossed = np.logical_or.reduce(corners) & ~np.logical_and.reduce(corners)
            needed = np.zeros(grid.shape, dtype=bool)
            for i in (0, 1):
                for j in (0, 1):
                    for k in (0, 1):
                        needed[i:i + crossed.shape[0], j:j + crossed.shape[1], k:k + crossed.shape[2]] |= crossed
            fewest = int(needed.sum())
        same = faces.shape == reference.shape and bool(np.array_equal(faces, reference))
        runs.append({"factor": factor, "follow_surface": follow, "points": int(count), "seconds": round(seconds, 2),
                     "faces": len(faces), "same_mesh_as_first": same})
        print(runs[-1], flush=True)
    mesh = args.mesh.stem
    lines = [f"# Coarse-to-fine extraction of a fitted {mesh} at {args.resolution}^3", "",
             f"Machine: {machine()}. The field of `sdfkit fit {args.mesh.name}` at the defaults; the fewest points "
             f"any extraction needs (the corners of the cells the surface crosses): {fewest:,}.", "",
             "| Lipschitz factor | surface followed | points | seconds | faces | same mesh as the first row |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['factor']} | {'yes' if r['follow_surface'] else 'no'} | {r['points']:,} | {r['seconds']} | "
              f"{r['faces']:,} | {'yes' if r['same_mesh_as_first'] else 'no'} |" for r in runs]
    text = "\n".join(lines) + "\n"
    print(text)
    name = args.name or f"extract_points-{mesh}"
    write_result(name, {"mesh": str(args.mesh), "resolution": args.resolution, "fewest_points": fewest, "runs": runs})
    write_result_text(name, ".md", text)


if __name__ == "__main__":
    main()
