"""``sdfkit eval``: a predicted mesh against the ground truth under the protocol of ``docs/metrics.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdfkit.cli.app import app


@app.command("eval")
def evaluate(
    pred: Annotated[Path, typer.Argument(help="Predicted mesh (any format trimesh reads).")],
    gt: Annotated[Path, typer.Argument(help="Ground-truth mesh; its unit frame is the metrics' frame.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the metrics to this JSON file.")] = None,
    surface_points: Annotated[int, typer.Option(help="Surface samples per mesh (protocol: 30000).")] = 30_000,
    volume_points: Annotated[int, typer.Option(help="Uniform volume samples for IoU (protocol: 1000000).")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Sampling seed (protocol: 0).")] = 0,
    convention: Annotated[str, typer.Option(
        help="sdfkit (docs/metrics.md), deepsdf (CD in GT's units, nearest-sample, 30k) or occnet (unit cube).",
    )] = "sdfkit",
) -> None:
    """Chamfer (to the surface), IoU, F-score, Hausdorff and normal consistency, in GT's unit frame."""
    import json

    from rich.console import Console
    from rich.table import Table

    from data_prep.mesh import load_mesh
    from sdfkit.conventions import CONVENTIONS, deepsdf_metrics, occnet_metrics
    from sdfkit.errors import SdfkitError
    from sdfkit.io import atomic_write_text
    from sdfkit.metrics import evaluate_meshes

    if surface_points < 1 or volume_points < 1:
        raise SdfkitError("--surface-points and --volume-points must be positive")
    if json_out is not None and json_out.suffix.lower() != ".json":
        raise SdfkitError(f"--json needs a .json file name, got {json_out.name}")
    if convention not in CONVENTIONS:
        raise SdfkitError(f"unknown --convention '{convention}' (choose from {', '.join(CONVENTIONS)})")
    with Console(stderr=True).status("sampling and measuring"):
        pred_mesh, gt_mesh = load_mesh(pred), load_mesh(gt)
        if convention == "deepsdf":
            metrics = deepsdf_metrics(pred_mesh, gt_mesh, seed=seed)
        elif convention == "occnet":
            metrics = occnet_metrics(pred_mesh, gt_mesh, seed=seed)
        else:
            metrics = evaluate_meshes(pred_mesh, gt_mesh, surface_points, volume_points, seed)
    frame = {"sdfkit": "GT unit frame", "deepsdf": "DeepSDF: GT's own units", "occnet": "OccNet: GT unit cube"}
    table = Table(title=f"{pred.name} vs {gt.name} ({frame[convention]})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.6g}")
    Console().print(table)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(metrics, indent=2) + "\n")
        typer.echo(f"wrote {json_out}")
