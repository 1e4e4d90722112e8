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
    gt: Annotated[Path | None,
                  typer.Option(help="Ground-truth mesh (default: the fit's input, if it exists).")] = None,
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
    view_source = load_source(source, exact, gt)
    viewer = None
    # Ctrl-C may come as soon as the URL is out (or while the server starts): every moment from here on stops cleanly.
    try:
        viewer = SliceViewer(view_source, host=host, port=port, resolution=resolution)
        typer.echo(f"sdfkit viewer at {viewer.url}  (Ctrl-C to stop)")
        sys.stdout.flush()  # the URL must reach pipes at once, not when the buffer fills
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        if viewer is not None:
            viewer.stop()
        typer.echo("stopped")


def _png(out: Path) -> None:
    from sdfkit.errors import SdfkitError

    if out.suffix.lower() != ".png":
        raise SdfkitError(f"--out must be a .png file, got '{out.name}'")


@app.command()
def render(
    mesh: Annotated[Path, typer.Argument(help="Mesh to render.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output PNG.")] = Path("render.png"),
    views: Annotated[int, typer.Option(help="Views around the mesh, side by side.")] = 1,
    size: Annotated[str, typer.Option(help="Size of each view, WIDTHxHEIGHT.")] = "512x512",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Render a mesh offscreen (pyrender; EGL without a display) from a three-quarter view or N views around it."""
    from sdfkit.io import refuse_existing
    from viewer.render import parse_size, write_render

    _png(out)
    refuse_existing(out, force)
    write_render(mesh, out, views=views, size=parse_size(size))
    typer.echo(f"wrote {out}")


@app.command()
def slices(
    source: Annotated[Path, typer.Argument(help="A fit output folder, or with --exact a mesh file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output PNG.")] = Path("slices.png"),
    exact: Annotated[bool, typer.Option("--exact", help="Slice the exact SDF of the mesh SOURCE.")] = False,
    resolution: Annotated[int, typer.Option(help="Pixels per slice side.")] = 256,
    count: Annotated[int, typer.Option(help="Slices per axis, evenly through the box.")] = 3,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Write a sheet of axis-aligned SDF slices (rows: x, y, z) in the input's units, with a colour bar."""
    from sdfkit.errors import SdfkitError
    from sdfkit.extract import check_resolution
    from sdfkit.io import refuse_existing
    from viewer.figures import MAX_COUNT, write_slices
    from viewer.sources import load_source

    check_resolution(resolution)
    if not 1 <= count <= MAX_COUNT:
        raise SdfkitError(f"--count must be in [1, {MAX_COUNT}], got {count}")
    _png(out)
    refuse_existing(out, force)
    src = load_source(source, exact)
    write_slices(out, src.field, src.bounds, count=count, resolution=resolution, normalization=src.normalization)
    typer.echo(f"wrote {out}")
