"""``sdfkit train CONFIG``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdfkit.cli.app import app


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Method config (YAML), e.g. configs/object.yaml.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: checkpoints, log, decoder.pt.")
    ] = Path("runs/train"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    steps: Annotated[int | None, typer.Option(help="Override train.steps.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[str | None, typer.Option(help="Override train.precision: fp32, tf32 or bf16.")] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile", help="Override train.compile.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train the decoder and every training scene's latent grid jointly (auto-decoder)."""
    from sdfkit.config import check_precision, load_settings, replace_section
    from sdfkit.train import close_distributed
    from sdfkit.train import train as run_training

    if precision is not None:
        check_precision(precision)
    cfg = replace_section(load_settings(config), "train", steps=steps, precision=precision, compile=compile)
    result = run_training(cfg, out, device=device, resume=resume, progress=not quiet)
    close_distributed()  # after a failure torchrun ends the group: a barrier there would wait for the dead rank
    typer.echo(f"trained {result.steps} steps in {result.seconds:.1f} s, final L1 {result.final_loss:.5f} (cells)")
    typer.echo(f"decoder: {result.decoder_path}")
