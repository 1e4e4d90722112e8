"""``sdfkit prep``: meshes to SDF samples (one ``.npz`` per shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdfkit.cli.app import app


@app.command()
def prep(
    path: Annotated[
        Path | None, typer.Argument(
            help="A mesh or point cloud, a folder of meshes, or a ShapeNet root "
                 "(<synset>/<model>/models/model_normalized.obj).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder: <class>/<instance>.npz per shape, and split.json.")
    ] = Path("samples"),
    preset: Annotated[
        str | None, typer.Option(help="Sampling preset: default, deepsdf or mesh-to-sdf (docs/sampling.md).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config",
            help="YAML of sampling keys applied over the preset (e.g. noise_stds, num_surface).")
    ] = None,
    points: Annotated[int | None, typer.Option(help="Samples per shape (default 500,000).")] = None,
    method: Annotated[
        str | None, typer.Option(help="exact (point-triangle distances, winding-number signs) or mesh-to-sdf.")
    ] = None,
    volume: Annotated[
        str | None, typer.Option(help="Uniform samples in the unit 'sphere' or the normalised 'bbox' (scenes).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Parallel processes (default: all cores).")] = None,
    synsets: Annotated[str | None, typer.Option(help="ShapeNet synsets to keep, comma-separated.")] = None,
    split: Annotated[
        Path | None, typer.Option("--split", help="DeepSDF-style split file: prepare only the shapes it lists.")
    ] = None,
    shard: Annotated[
        str | None, typer.Option(help="Take shard i of n (i/n, 0-based): shapes whose sorted index is i mod n.")
    ] = None,
    combine: Annotated[
        bool, typer.Option("--combine", help="Merge the shards' split files and manifests in --out (or PATH) into "
                                             "split.json and manifest.csv/json (the last shard to finish does it too).")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Resample shapes that already have samples (without it, "
                                        "current samples are kept and others are not replaced).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Sample signed distances (negative inside) of meshes into one .npz per shape; resumable."""
    from data_prep.dataset import combine_shards, prep_dataset
    from data_prep.sampling import load_sampling_config
    from data_prep.yaml_io import override
    from sdfkit.errors import SdfkitError
    from sdfkit.progress import Reporter

    if combine:
        typer.echo(f"wrote {', '.join(map(str, combine_shards(path if path is not None else out)))}")
        return
    if path is None:
        raise SdfkitError("prep needs a PATH (a mesh, a folder of meshes or a ShapeNet root), or --combine")
    if workers is not None and workers < 1:
        raise SdfkitError(f"--workers must be at least 1, got {workers}")
    cfg = override(load_sampling_config(config, preset), num_points=points, method=method, volume=volume, seed=seed)
    keep = [s for s in synsets.split(",") if s] if synsets else None
    with Reporter(not quiet) as progress:
        summary = prep_dataset(path, out, cfg, workers=workers, synsets=keep, shard=shard, force=force,
                               progress=progress, split=split)
    if path.is_file() and summary.failed:  # a single mesh: its reason is the one-line error
        raise SdfkitError(next(iter(summary.failed.values())))
    _print_summary(summary, out)
    if summary.failed:
        raise typer.Exit(1)


def _print_summary(summary, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sdfkit prep -> {out}", title_justify="left")
    table.add_column("shape", no_wrap=True)
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("reason", overflow="fold")
    for name in summary.written:
        status = "written, [yellow]rejected[/yellow]" if name in summary.rejected else "written"
        table.add_row(name, status, f"{summary.seconds.get(name, 0.0):.1f}", summary.rejected.get(name, ""))
    for name in summary.skipped:
        status = "up to date, [yellow]rejected[/yellow]" if name in summary.rejected else "up to date"
        table.add_row(name, status, "", summary.rejected.get(name, ""))
    for name, reason in summary.failed.items():
        table.add_row(name, "[red]failed[/red]", "", reason)
    console = Console()
    if not console.is_terminal:  # logs and pipes: keep rows on one line each
        console = Console(width=200)
    console.print(table)
    split = f", split file {summary.split_file}" if summary.split_file else ""
    typer.echo(f"{len(summary.written)} written, {len(summary.skipped)} up to date, {len(summary.failed)} failed, "
               f"{len(summary.rejected)} rejected (manifest.csv, manifest.json){split}")
    if summary.combined:
        typer.echo(f"every shard has finished: merged into {', '.join(p.name for p in summary.combined)}")
