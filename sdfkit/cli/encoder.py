"""``sdfkit train-encoder CONFIG``: codes in one pass for a frozen decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdfkit.cli.app import app


@app.command("train-encoder")
def train_encoder(
    config: Annotated[Path, typer.Argument(help="Encoder config (YAML), e.g. configs/encoder.yaml.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Encoder file to write.")] = Path("runs/encoder.pt"),
    decoder: Annotated[Path | None, typer.Option(help="Decoder to train for (default: the shipped one).")] = None,
    steps: Annotated[int | None, typer.Option(help="Override train.steps.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Override train.max_seconds.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No log lines.")] = False,
) -> None:
    """Train an encoder from tiles' exact SDF lattices to their codes, through the frozen decoder."""
    import sys

    from sdfkit.config import replace_section
    from sdfkit.decoder_io import load_decoder
    from sdfkit.encoder import initial_encoder, load_encoder_config, save_encoder, training_cells, validation_scenes
    from sdfkit.encoder import train_encoder as run
    from sdfkit.errors import SdfkitError

    cfg = load_encoder_config(config)
    if steps is not None and steps < 1 or max_seconds is not None and not max_seconds > 0:
        raise SdfkitError("--steps and --max-seconds must be positive")
    cfg = replace_section(cfg, "train", steps=steps, max_seconds=max_seconds)
    dec, dec_cfg, _ = load_decoder(decoder)
    log = (lambda _: None) if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    start = initial_encoder(cfg, dec, dec_cfg.model.latent_dim)  # a bad train.init fails before minutes of sampling
    cells = training_cells(cfg, dec_cfg, log)
    encoder, summary = run(dec, dec_cfg, cfg, cells, log, val=validation_scenes(cfg, dec_cfg), start=start)
    save_encoder(out, encoder, cfg, dec, command=" ".join(sys.argv), **summary)
    typer.echo(f"trained {summary['steps']} steps in {summary['seconds']:.1f} s, final L1 "
               f"{summary['final_l1_cells']:.5f} (cells); encoder: {out}")
