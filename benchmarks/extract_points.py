"""Points a fitted field is evaluated at by coarse-to-fine extraction, against the skip test's Lipschitz factor.

    python -m benchmarks.extract_points [--mesh ../shared/meshes/val/penguin.obj] [--factors 1.5 1.0 0.5]
                                        [--against COMMIT]

Fits the mesh with the defaults (``sdfkit fit``), then extracts the fitted field at 256^3 with each factor
(followed by :func:`sdfkit.extract.follow_surface`, as ``sdfkit fit`` does) and once with the surface left unfollowed;
prints the points evaluated, the seconds, and whether each mesh has the faces of the first factor's mesh. The fewest
points any extraction can evaluate are the corners of the cells the surface crosses, also printed. ``--against``
adds a row for ``sdfkit/extract.py`` as it was at COMMIT (read with ``git show``), on the same field at the default
factor, so a change to the extraction is compared within one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks.common import REPO, SHARED, timed_fit_command, write_table


def extract_module_at(commit: str, folder: Path):
    """``sdfkit/extract.py`` as it was at ``commit``, imported as a module of its own."""
    shown = subprocess.run(["git", "show", f"{commit}:sdfkit/extract.py"], cwd=REPO, capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"--against {commit}: git has no sdfkit/extract.py there ({shown.stderr.strip()})")
    source = shown.stdout
    path = folder / f"extract_{commit}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"extract_{commit}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.5, 1.0, 0.5])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--name", default=None)
    parser.add_argument("--against", default=None, help="also run sdfkit/extract.py as it was at this commit")
    args = parser.parse_args()
    import sdfkit.extract as extract
    from sdfkit.fit_output import load_fitted
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    with tempfile.TemporaryDirectory() as tmp:
        timed_fit_command(args.mesh, Path(tmp) / "fit", ["--no-preview"], threads=None)
        fitted = load_fitted(Path(tmp) / "fit")
        versions = {"this checkout": extract}
        if args.against:
            versions[f"extract.py at {args.against}"] = extract_module_at(args.against, Path(tmp))
    field = fitted.field
    runs, reference = [], None
    cases = [("this checkout", f, True) for f in args.factors] + [("this checkout", min(args.factors), False)]
    cases += [(version, extract.LIPSCHITZ_FACTOR, True) for version in list(versions)[1:]]
    for version, factor, follow in cases:
        module = versions[version]
        t0 = time.perf_counter()
        with mock.patch.object(module, "follow_surface", module.follow_surface if follow else lambda *a, **k: 0):
            grid, count = module.evaluate_grid_coarse_to_fine(field, args.resolution, fitted.bounds,
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
        runs.append({"extraction": version, "factor": factor, "follow_surface": follow, "points": int(count),
                     "seconds": round(seconds, 2), "faces": len(faces), "same_mesh_as_first": same})
        print(runs[-1], flush=True)
    mesh = args.mesh.stem
    write_table(args.name or f"extract_points-{mesh}", f"Coarse-to-fine extraction of a fitted {mesh} at "
                f"{args.resolution}^3", f"The field of `sdfkit fit {args.mesh.name}` at the defaults; the fewest "
                f"points any extraction needs (the corners of the cells the surface crosses): {fewest:,}.",
                ["extraction", "Lipschitz factor", "surface followed", "points", "seconds", "faces",
                 "same mesh as the first row"],
                [[r["extraction"], r["factor"], "yes" if r["follow_surface"] else "no", f"{r['points']:,}",
                  r["seconds"], f"{r['faces']:,}", "yes" if r["same_mesh_as_first"] else "no"] for r in runs],
                {"mesh": str(args.mesh), "resolution": args.resolution, "fewest_points": fewest, "runs": runs})


if __name__ == "__main__":
    main()
