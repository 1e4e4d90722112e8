"""``sdfkit mesh`` (field -> mesh) and ``sdfkit eval`` (mesh vs mesh)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sdfkit.cli.app import app


@app.command()
def mesh(
    source: Annotated[Path, typer.Argument(help="A fit output folder, or with --exact a mesh file.")],
    out: Annotated[Path, typer.Argument(help="Output mesh; format by extension: obj, ply, stl, glb, off.")],
    exact: Annotated[bool, typer.Option("--exact", help="Extract the exact SDF of the mesh SOURCE (remeshing).")] = False,
    resolution: Annotated[int, typer.Option(help="Marching-cubes resolution per axis.")] = 256,
    level: Annotated[float, typer.Option(help="Iso level, in the input's units.")] = 0.0,
    keep_largest: Annotated[bool, typer.Option("--keep-largest", help="Keep only the largest component.")] = False,
    min_component_faces: Annotated[int, typer.Option(help="Drop components with fewer faces.")] = 0,
    smooth: Annotated[int, typer.Option(help="Taubin smoothing iterations (0: none).")] = 0,
    coarse_to_fine: Annotated[bool, typer.Option("--coarse-to-fine/--dense", help="Evaluate only near the surface.")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (fitted fields).")] = "auto",
) -> None:
    """Extract a mesh, in the input's own units, from a fitted field or a mesh's exact SDF."""
    import numpy as np

    from sdfkit.export import check_format, export_mesh
    from sdfkit.extract import extract_mesh

    check_format(out)
    if exact:
        from data_prep.mesh import load_mesh, normalize_mesh
        from data_prep.sdf import MeshSDF

        unit, norm = normalize_mesh(load_mesh(source))
        lo, hi = unit.bounds
        pad = 0.02 * (hi - lo).max()
        field, bounds = MeshSDF(unit), (lo - pad, hi + pad)
    else:
        from sdfkit.fitted import load_fitted

        fitted = load_fitted(source, device=device)
        field, norm, bounds = fitted.field, fitted.normalization, fitted.bounds
    result = extract_mesh(field, resolution=resolution, level=level / norm.scale, bounds=bounds,
                          coarse_to_fine=coarse_to_fine, keep_largest=keep_largest,
                          min_component_faces=min_component_faces, smooth_iterations=smooth, normalization=norm)
    export_mesh(result, out)
    typer.echo(f"wrote {out}: {len(result.vertices)} vertices, {len(result.faces)} faces, "
               f"bounds {np.round(result.bounds[0], 4).tolist()} .. {np.round(result.bounds[1], 4).tolist()}")


@app.command("eval")
def evaluate(
    pred: Annotated[Path, typer.Argument(help="Predicted mesh.")],
    gt: Annotated[Path, typer.Argument(help="Ground-truth mesh.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the metrics as JSON.")] = None,
    surface_points: Annotated[int, typer.Option(help="Surface samples per mesh.")] = 30_000,
    volume_points: Annotated[int, typer.Option(help="Volume samples for IoU.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Chamfer (to the surface), IoU, F-score, Hausdorff and normal consistency, in GT's unit frame (docs/metrics.md)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from data_prep.mesh import load_mesh
    from sdfkit.errors import SdfkitError
    from sdfkit.io import atomic_write_text
    from sdfkit.metrics import evaluate_meshes

    if surface_points < 1 or volume_points < 1:
        raise SdfkitError("--surface-points and --volume-points must be positive")
    metrics = evaluate_meshes(load_mesh(pred), load_mesh(gt), surface_points, volume_points, seed)
    table = Table(title=f"{pred.name} vs {gt.name} (GT unit frame)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.6g}")
    Console().print(table)
    if json_out:
        atomic_write_text(json_out, json.dumps(metrics, indent=2) + "\n")
