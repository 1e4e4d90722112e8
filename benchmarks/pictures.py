"""Time the pictures: a viewer slice, a fit's preview sheet, the ``sdfkit slices`` sheet and a render, on one mesh.

The field is the mesh's exact SDF (point-cloud-utils), so the figures separate the drawing (matplotlib,
pyrender) from the field's evaluation, which is timed on its own. Each figure is the best of ``--repeats``.

    python -m benchmarks.pictures [--mesh ../shared/meshes/val/penguin.obj] [--repeats 2]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

from benchmarks.common import SHARED, git_commit, load_average, machine, write_result


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default=None, help="result file name (default: pictures-cpu-<UTC time>)")
    args = parser.parse_args()
    load_before = load_average()

    from data_prep.mesh import load_mesh, normalize_mesh
    from viewer.figures import slice_sheet
    from viewer.preview import SLICE_RESOLUTION, preview_sheet, render_panels, slice_panels
    from viewer.render import render_row
    from viewer.slices import colorize, evaluate_slice
    from viewer.sources import exact_source

    src = exact_source(args.mesh)
    mesh = load_mesh(args.mesh)
    unit, norm = normalize_mesh(mesh)
    centre = (src.bounds[0] + src.bounds[1]) / 2
    rows = {
        "viewer_slice_256_s": best(lambda: colorize(evaluate_slice(src.field, 2, float(centre[2]), src.bounds, 256)),
                                   args.repeats),
        "render_1x512_s": best(lambda: render_row(mesh, 1, (512, 512)), args.repeats),
        "preview_renders_s": best(lambda: render_panels(unit, unit).result(), args.repeats),
        "preview_slices_field_s": best(lambda: slice_panels(src.field, src.bounds), args.repeats),
        "preview_total_s": best(lambda: preview_sheet(unit, unit, src.field, norm, src.bounds), args.repeats),
        "slices_3x3_256_total_s": best(lambda: slice_sheet(src.field, src.bounds, 3, 256, normalization=norm),
                                       args.repeats),
    }
    load_after = load_average()
    result = {
        "command": "python -m benchmarks.pictures " + " ".join(sys.argv[1:]),
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "mesh": args.mesh.name,
        "field": "exact SDF (point-cloud-utils)",
        "preview_slice_resolution": SLICE_RESOLUTION,
        "repeats": args.repeats,
        **rows,
    }
    # A new file per run: earlier figures stay on record.
    name = args.name or "pictures-cpu-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M")
    path = write_result(name, result)
    print(f"{machine()}; commit {result['commit']}; load {load_before} -> {load_after}")
    for key, value in rows.items():
        print(f"  {key}: {value:.3f} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
