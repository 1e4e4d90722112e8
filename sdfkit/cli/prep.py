"""``sdfkit prep``: meshes to SDF samples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sdfkit.cli.app import app


@app.command()
def prep(
    path: Annotated[Path, typer.Argument(help="A mesh, a folder of meshes, or a ShapeNet root (<synset>/<model>/models/model_normalized.obj).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: one .npz per shape and split.json.")] = Path("samples"),
    preset: Annotated[str, typer.Option(help="Sampling preset: default, deepsdf or mesh-to-sdf.")] = "default",
    points: Annotated[Optional[int], typer.Option(help="Samples per shape (default 500,000).")] = None,
    volume: Annotated[Optional[str], typer.Option(help="Uniform samples in the unit 'sphere' or the normalised 'bbox'.")] = None,
    method: Annotated[str, typer.Option(help="exact (distances + winding-number signs) or mesh-to-sdf.")] = "exact",
    workers: Annotated[Optional[int], typer.Option(help="Parallel processes (default: all cores).")] = None,
    synsets: Annotated[Optional[str], typer.Option(help="ShapeNet synsets to keep, comma-separated.")] = None,
    shard: Annotated[Optional[str], typer.Option(help="Take shard i of n (i/n, 0-based) of the shapes.")] = None,
    combine: Annotated[bool, typer.Option("--combine", help="Merge the shards' split files in --out into split.json.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Resample shapes whose output is current.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Sample signed distances (negative inside) of meshes into one .npz per shape; resumable."""
    import dataclasses

    from data_prep.dataset import combine_shards, prep_dataset
    from data_prep.sampling import sampling_preset
    from sdfkit.errors import SdfkitError

    if combine:
        typer.echo(f"wrote {combine_shards(out)}")
        return
    if method not in ("exact", "mesh-to-sdf"):
        raise SdfkitError(f"--method must be exact or mesh-to-sdf, got '{method}'")
    if volume not in (None, "sphere", "bbox"):
        raise SdfkitError(f"--volume must be sphere or bbox, got '{volume}'")
    changes = {"seed": seed, "method": method}
    if points is not None:
        changes["num_points"] = points
    if volume is not None:
        changes["volume"] = volume
    config = dataclasses.replace(sampling_preset(preset), **changes)
    summary = prep_dataset(path, out, config, workers=workers, synsets=synsets.split(",") if synsets else None,
                           shard=shard, force=force, progress=not quiet)
    if path.is_file() and summary.failed:  # a single mesh: its error is the whole story
        raise SdfkitError(next(iter(summary.failed.values())))
    typer.echo(f"{len(summary.written)} written, {len(summary.skipped)} up to date, {len(summary.failed)} failed -> {out}")
    for mesh, reason in summary.failed.items():
        typer.echo(f"failed: {reason}", err=True)
    if summary.failed:
        raise typer.Exit(1)
