"""``sdfkit view`` (interactive), ``sdfkit render`` and ``sdfkit slices`` (pictures)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdfkit.cli.app import app


@app.command()
def view(
    source: Annotated[Path, typer.Argument(help="A fit output folder, or with --exact a mesh file.")],
    exact: Annotated[bool, typer.Option("--exact", help="Show the exact SDF of the mesh SOURCE.")] = False,
    gt: Annotated[Path | None, typer.Option(help="Ground-truth mesh (default: the fit's input, if it exists).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
    resolution: Annotated[int, typer.Option(help="Initial slice resolution: 64, 128, 256 or 512.")] = 256,
) -> None:
    """Open an interactive slice viewer in the browser; serves until Ctrl-C."""
    import sys
    import time

    from sdfkit.errors import SdfkitError
    from viewer.server import SliceViewer
    from viewer.sources import load_source

    if port is not None and not 1 <= port <= 65535:
        raise SdfkitError(f"--port must be between 1 and 65535, got {port}")
    viewer = SliceViewer(load_source(source, exact, gt), host=host, port=port, resolution=resolution)
    typer.echo(f"sdfkit viewer at {viewer.url}  (Ctrl-C to stop)")
    sys.stdout.flush()  # the URL must reach pipes at once, not when the buffer fills
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        viewer.stop()
        typer.echo("stopped")


def _size(text: str) -> tuple[int, int]:
    from sdfkit.errors import SdfkitError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SdfkitError(f"--size must look like WIDTHxHEIGHT, got '{text}'") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise SdfkitError(f"--size must be between 16 and 8192 pixels per side, got '{text}'")
    return w, h


@app.command()
def render(
    mesh: Annotated[Path, typer.Argument(help="Mesh to render.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output PNG.")] = Path("render.png"),
    views: Annotated[int, typer.Option(help="Views around the mesh, side by side.")] = 1,
    size: Annotated[str, typer.Option(help="Size of each view, WIDTHxHEIGHT.")] = "512x512",
) -> None:
    """Render a mesh offscreen (pyrender; EGL without a display) from a three-quarter view or N views around it."""
    import numpy as np
    from PIL import Image

    from data_prep.mesh import load_mesh
    from sdfkit.errors import SdfkitError
    from sdfkit.io import atomic_path
    from viewer.render import render_mesh

    if not 1 <= views <= 36:
        raise SdfkitError(f"--views must be between 1 and 36, got {views}")
    if out.suffix.lower() != ".png":
        raise SdfkitError(f"--out must be a .png file, got '{out.name}'")
    w, h = _size(size)
    m = load_mesh(mesh)
    images = [render_mesh(m, (w, h), azimuth=45.0 + 360.0 * i / views) for i in range(views)]
    with atomic_path(out) as tmp:
        Image.fromarray(np.concatenate(images, axis=1)).save(tmp, format="PNG")
    typer.echo(f"wrote {out}")


@app.command()
def slices(
    source: Annotated[Path, typer.Argument(help="A fit output folder, or with --exact a mesh file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output PNG.")] = Path("slices.png"),
    exact: Annotated[bool, typer.Option("--exact", help="Slice the exact SDF of the mesh SOURCE.")] = False,
    resolution: Annotated[int, typer.Option(help="Pixels per slice side.")] = 256,
    count: Annotated[int, typer.Option(help="Slices per axis, evenly through the box.")] = 3,
) -> None:
    """Write a grid of axis-aligned SDF slices (rows: x, y, z) with their zero contours."""
    import numpy as np
    from PIL import Image

    from sdfkit.errors import SdfkitError
    from sdfkit.io import atomic_path
    from viewer.slices import slice_image
    from viewer.sources import load_source

    if not 16 <= resolution <= 2048 or not 1 <= count <= 16:
        raise SdfkitError("--resolution must be in [16, 2048] and --count in [1, 16]")
    if out.suffix.lower() != ".png":
        raise SdfkitError(f"--out must be a .png file, got '{out.name}'")
    src = load_source(source, exact)
    lo, hi = (np.asarray(b, dtype=np.float64) for b in src.bounds)
    vmax = float(np.max(hi - lo)) / 8
    rows = []
    for axis in range(3):
        positions = lo[axis] + (hi[axis] - lo[axis]) * (np.arange(count) + 1) / (count + 1)
        images = [slice_image(src.field, axis, float(p), (lo, hi), resolution, vmax) for p in positions]
        rows.append(np.concatenate(images, axis=1))
    with atomic_path(out) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    typer.echo(f"wrote {out}")
