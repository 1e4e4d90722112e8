"""``sdfkit fit FOLDER_OR_SPLIT``: every mesh of a folder with one decoder, and a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from sdfkit.batch import SUMMARY_MD, fit_folder
from sdfkit.fit import Drawer, FitRequest


def fit_folder_command(source: Path, out: Path, opts: FitRequest, quiet: bool, preview: Drawer | None,
                       conventions: tuple[str, ...] = ()) -> None:
    """Run :func:`sdfkit.batch.fit_folder`, one line per mesh; exit 1 when any mesh failed."""

    def report(row: dict) -> None:
        if row["status"] == "failed":
            typer.echo(f"{row['mesh']}: failed: {row['reason']}", err=True)
        else:
            typer.echo(f"{row['mesh']}: {row['status']}  chamfer {row['chamfer']:.3e}  IoU {row['iou']:.4f}")

    rows, stats = fit_folder(source, out, opts, progress=not quiet, on_mesh=report, preview=preview,
                             conventions=conventions)
    failed = sum(r["status"] == "failed" for r in rows)
    iou = stats.get("iou")
    median = f", median IoU {iou['median']:.4f}" if iou else ""
    typer.echo(f"wrote {out / SUMMARY_MD}: {len(rows) - failed} of {len(rows)} meshes fitted{median}")
    if failed:
        raise typer.Exit(1)
