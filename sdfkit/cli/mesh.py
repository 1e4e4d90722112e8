"""``sdfkit mesh``: a fitted field, or a mesh's exact SDF, to a mesh in the input's own units."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdfkit.cli.app import app
from sdfkit.export import DEFAULT_FACES


@app.command()
def mesh(
    source: Annotated[Path, typer.Argument(help="A fit output folder, or with --exact a mesh file.")],
    out: Annotated[Path, typer.Argument(help="Output mesh; format by extension: obj, ply, stl, glb, off.")],
    exact: Annotated[
        bool, typer.Option("--exact", help="Extract the exact SDF of the mesh SOURCE (remeshing; the oracle).")
    ] = False,
    resolution: Annotated[int, typer.Option(help="Marching-cubes lattice points per axis (16 to 2048).")] = 256,
    level: Annotated[float, typer.Option(help="Iso level, in the input's units (negative: inside).")] = 0.0,
    keep_largest: Annotated[
        bool, typer.Option("--keep-largest", help="Keep only the largest connected component.")
    ] = False,
    min_component_faces: Annotated[int, typer.Option(help="Drop components with fewer faces than this.")] = 0,
    keep_unsupported: Annotated[bool, typer.Option(
        "--keep-unsupported", help="Keep the parts that lie wholly away from the fitted input, which sdfkit fit "
                                   "drops (fit output folders).")] = False,
    smooth: Annotated[int, typer.Option(help="Taubin smoothing iterations (0: none).")] = 0,
    coarse_to_fine: Annotated[bool, typer.Option(
        "--coarse-to-fine/--no-coarse-to-fine", help="Evaluate the field only near the surface (same mesh, faster).")
    ] = True,
    lipschitz_factor: Annotated[float | None, typer.Option(
        help="Safety factor of the coarse-to-fine skip test (default 1.0: exact for distance fields).")] = None,
    faces: Annotated[int, typer.Option(help="Simplify to about this many faces (0: keep every face).")
                     ] = DEFAULT_FACES,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (fitted fields).")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing OUT.")] = False,
) -> None:
    """Extract a mesh, in the input's own units, from a fitted field or a mesh's exact SDF."""
    import numpy as np

    from sdfkit.errors import SdfkitError
    from sdfkit.export import check_faces, check_format, export_mesh, simplify_mesh
    from sdfkit.extract import LIPSCHITZ_FACTOR, check_resolution, extract_mesh, padded_bounds
    from sdfkit.io import refuse_existing
    from sdfkit.progress import Reporter

    # Every check before minutes of extraction.
    check_format(out)
    check_resolution(resolution)
    check_faces(faces)
    refuse_existing(out, force)
    if min_component_faces < 0 or smooth < 0:
        raise SdfkitError("--min-component-faces and --smooth must not be negative")
    if exact and keep_unsupported:
        raise SdfkitError("--keep-unsupported applies to a fit output folder: an exact SDF has no unsupported parts")
    if exact:
        from data_prep.mesh import load_mesh, normalize_mesh
        from data_prep.sdf import MeshSDF

        if source.is_dir():
            raise SdfkitError(f"--exact needs a mesh file, and {source} is a folder")
        unit, norm = normalize_mesh(load_mesh(source))
        lo, hi = unit.bounds
        field, bounds, fitted = MeshSDF(unit), padded_bounds(lo, hi, resolution), None
    else:
        from sdfkit.fit_output import load_fitted

        if source.is_file() and source.suffix.lower() != ".pt":
            raise SdfkitError(f"{source} is a file: pass --exact to remesh a mesh, or give a fit output folder")
        fitted = load_fitted(source, device=device)
        field, norm, bounds = fitted.field, fitted.normalization, fitted.bounds
    notes = []
    with Reporter() as progress:  # one display for extraction and simplification
        result = extract_mesh(field, resolution=resolution, level=level / norm.scale, bounds=bounds,
                              coarse_to_fine=coarse_to_fine,
                              lipschitz_factor=LIPSCHITZ_FACTOR if lipschitz_factor is None else lipschitz_factor,
                              keep_largest=keep_largest, min_component_faces=min_component_faces,
                              smooth_iterations=smooth, normalization=norm, progress=progress)
        if fitted is not None and not keep_unsupported:
            result, dropped = fitted.drop_unsupported(result, resolution, level)
            if dropped is None:
                notes.append("every part kept: this fit output predates the surface points that decide unsupported "
                             "parts")
            elif dropped["removed"]:
                notes.append(f"dropped {dropped['removed']} part(s) of {dropped['faces']} faces that lie wholly away "
                             "from the input (--keep-unsupported keeps them)")
        full_faces = len(result.faces)
        with progress.stage("simplify"):
            result = simplify_mesh(result, faces)
    export_mesh(result, out)
    typer.echo(f"wrote {out}: {len(result.vertices)} vertices, {len(result.faces)} faces (of {full_faces}), "
               f"bounds {np.round(result.bounds[0], 4).tolist()} .. {np.round(result.bounds[1], 4).tolist()}")
    for note in notes:
        typer.echo(note)
