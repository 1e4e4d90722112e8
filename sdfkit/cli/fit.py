"""``sdfkit fit MESH``: the command users start with."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sdfkit.cli.app import app
from sdfkit.config import FitConfig
from sdfkit.export import DEFAULT_FACES

#: Below this IoU against its input a fit is flagged on stderr.
LOW_IOU = 0.9

if TYPE_CHECKING:
    from sdfkit.fit import FitResult


def draw_preview(path: Path, result: FitResult) -> None:
    """``preview.png`` of a fit: renders of reconstruction and input beside three SDF slices."""
    from viewer.preview import write_preview

    # The mesh as written: what the user gets, and at a render's size as good as the full one for less work.
    recon = result.written if result.written is not None else result.recon
    write_preview(path, recon, result.mesh, result.field, result.normalization, result.bounds)


@app.command()
def fit(
    mesh: Annotated[Path, typer.Argument(help="Input mesh (obj, ply, stl, off, glb, gltf), point cloud (ply without "
                                              "faces, xyz, pts, txt, npy, npz), or a folder, glob "
                                              "pattern, prep output or split file: every mesh it names, plus "
                                              "summary.csv/.md.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: runs/<mesh name>).")] = None,
    decoder: Annotated[Path | None, typer.Option(help="Decoder file (default: the one shipped with sdfkit).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML whose fit/grid/sampling sections override the decoder's.")
    ] = None,
    init: Annotated[str | None, typer.Option(
        help="auto (default): the encoder when one serves the decoder, else random; encoder: codes from the encoder, "
             "then a few refinement steps; random: codes from noise, then the full steps.")] = None,
    encoder: Annotated[Path | None, typer.Option(
        help="Encoder file for --init encoder (default: the shipped one).")] = None,
    optimizer: Annotated[str | None, typer.Option(
        help="adam: gradient steps on the codes; lm: Levenberg-Marquardt sweeps over the tiles (--steps then "
             "counts sweeps).")] = None,
    steps: Annotated[int | None, typer.Option(
        help=f"Optimisation steps on the latent codes (default {FitConfig.refine_steps} after the encoder, "
             f"{FitConfig.steps} from noise; LM: sweeps).")] = None,
    batch_points: Annotated[
        int | None, typer.Option(help="Points per step (default: 1 per code after the encoder, 3 from noise; "
                                      "8,192 to 262,144).")
    ] = None,
    max_seconds: Annotated[float | None, typer.Option(
        help="Time budget of the fitting stage: the learning rate anneals over it and fitting stops when it is "
             "spent.")] = None,
    precision: Annotated[
        str | None, typer.Option(help="auto (default: bf16 on a CPU with bf16 instructions, else fp32), fp32, tf32 or "
                                      "bf16 arithmetic in the steps' forward passes.")
    ] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile",
        help="Run the decoder through torch.compile (a one-off compilation, then faster steps).")] = None,
    grid_resolution: Annotated[int | None, typer.Option(help="Tiles along the longest axis.")] = None,
    resolution: Annotated[int | None, typer.Option(help="Marching-cubes resolution, 16 to 2048 (default 256).")
                          ] = None,
    format: Annotated[str, typer.Option("--format", help="Mesh format: obj, ply, stl, glb or off.")] = "obj",
    faces: Annotated[int, typer.Option(help="Simplify mesh.<format> to about this many faces (0: keep every face).")
                     ] = DEFAULT_FACES,
    keep_full: Annotated[bool, typer.Option("--keep-full", help="Also write the unsimplified mesh_full.<format>.")
                         ] = False,
    keep_unsupported: Annotated[bool, typer.Option("--keep-unsupported",
        help="Keep parts of the mesh that lie wholly away from the input (dropped by default: report.json counts "
             "them).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int | None, typer.Option(help="Random seed for sampling and batches.")] = None,
    normals: Annotated[str, typer.Option(
        help="Point clouds: auto (the file's normals, else estimated), given (required) or estimate.")] = "auto",
    denoise: Annotated[str, typer.Option(
        help="Point clouds: move each point onto a quadratic surface fitted to its neighbours: auto (when the "
             "cloud looks noisy), on or off."
    )] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output folder.")] = False,
    preview: Annotated[bool, typer.Option("--preview/--no-preview", help="Write preview.png.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    convention: Annotated[list[str] | None, typer.Option(
        help="Folder fits: also score every mesh in deepsdf's or occnet's convention (repeatable).")] = None,
    batch_shapes: Annotated[int | None, typer.Option(
        help="Folder fits: meshes whose codes are refined together in one batch (default: 8 on a GPU, 1 on a "
             "CPU).")] = None,
) -> None:
    """Fit a mesh's latent grid with the decoder frozen; write mesh, latents.pt, report.json and preview.png."""
    # Imported when the command runs: the other commands and --help do not pay for torch.
    from sdfkit.batch import default_out, is_batch_source
    from sdfkit.extract import check_resolution
    from sdfkit.fit import FitRequest, fit_mesh

    if resolution is not None:
        check_resolution(resolution)  # at once, not after loading the mesh and the decoder
    out = out or default_out(mesh)
    opts = FitRequest(
        decoder=str(decoder) if decoder else None, config=str(config) if config else None, steps=steps,
        batch_points=batch_points, max_seconds=max_seconds, precision=precision, compile=compile,
        grid_resolution=grid_resolution, resolution=resolution, device=device,
        format=format, faces=faces, keep_full=keep_full, keep_unsupported=keep_unsupported, force=force,
        preview=preview, seed=seed, init=init,
        optimizer=optimizer, encoder=str(encoder) if encoder else None, normals=normals, denoise=denoise,
        batch_shapes=batch_shapes,
    )
    if is_batch_source(mesh):
        from sdfkit.cli.batch import fit_folder_command

        fit_folder_command(mesh, out, opts, quiet, draw_preview, tuple(convention or ()))
        return
    if batch_shapes is not None:
        from sdfkit.errors import SdfkitError

        raise SdfkitError("--batch-shapes is for folder fits (a folder, glob pattern or split file)")
    report = fit_mesh(mesh, out, opts, progress=not quiet, preview=draw_preview).report
    m, meshes = report["metrics"], report["meshes"]
    iou = f"IoU {m['iou']:.4f}  " if "iou" in m else "(to the input points)  "
    if "iou" in m and m["iou"] < LOW_IOU:
        typer.echo(f"warning: the fitted mesh's IoU against the input is {m['iou']:.3f} (below {LOW_IOU}); "
                   "more --steps or --max-seconds would help", err=True)
    typer.echo(
        f"wrote {out}/{report['mesh']} ({meshes['mesh']['faces']:,} of {meshes['full']['faces']:,} faces)  "
        f"chamfer {m['chamfer']:.3e}  {iou}F@1% {m['fscore_1pct']:.4f}  "
        f"({report['steps']} steps, {report['seconds_total']:.1f} s on {report['device']})"
    )
