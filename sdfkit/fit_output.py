"""A fit's output folder, written and read here only.

Files: ``mesh.<format>`` (the extracted mesh, in the input's units),
``latents.pt`` (the decoder, the latent grid, the clamp band, the input's
normalisation and where the input came from; plain data, loaded with
``weights_only=True``), ``report.json`` (metrics, timings, settings) and,
when drawn, ``preview.png``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from data_prep.mesh import Normalization
from sdfkit.config import SdfkitConfig
from sdfkit.decoder_io import decoder_from_payload, decoder_payload
from sdfkit.errors import SdfkitError
from sdfkit.field import NeuralField
from sdfkit.io import load_torch, save_torch
from sdfkit.models.latent_grid import LatentGrid
from sdfkit.models.siren import ModulatedSiren
from sdfkit.runtime import resolve_device

LATENTS = "latents.pt"
REPORT = "report.json"
PREVIEW = "preview.png"
LATENTS_VERSION = 1


def mesh_file_name(fmt: str) -> str:
    """The extracted mesh's file name for an export format (``obj`` -> ``mesh.obj``)."""
    return f"mesh.{fmt}"


def write_latents(path: Path, decoder: ModulatedSiren, cfg: SdfkitConfig, grid: LatentGrid,
                  normalization: Normalization, source: Path, mesh_hash: str, mesh_file: str) -> None:
    """Write ``latents.pt`` atomically: everything :func:`load_fitted` needs to rebuild the field."""
    save_torch(
        {
            "sdfkit": {"kind": "latents", "version": LATENTS_VERSION},
            "decoder": decoder_payload(decoder, cfg),
            "grid": grid.state(),
            "band": cfg.loss.band,
            "normalization": normalization.to_dict(),
            "source": str(source.resolve()),
            "mesh_hash": mesh_hash,
            "mesh_file": mesh_file,
        },
        path,
    )


def write_report(path: Path, report: dict) -> None:
    """Write ``report.json`` (indented, one trailing newline)."""
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


@dataclasses.dataclass
class FittedScene:
    """A fitted scene: ``field`` maps (N, 3) unit-frame points to (N,) signed distances (negative inside)."""

    field: NeuralField
    normalization: Normalization
    bounds: tuple[np.ndarray, np.ndarray]
    mesh_path: Path
    source: Path
    decoder_id: str
    report: dict


def load_fitted(path: str | Path, device: str = "cpu") -> FittedScene:
    """Load ``DIR`` (or ``DIR/latents.pt``) written by ``sdfkit fit``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    latents = path / LATENTS if path.is_dir() else path
    if not path.exists():
        raise SdfkitError(f"not found: {path}")
    if path.is_dir() and not latents.is_file():
        raise SdfkitError(f"{path} is not a fit output (no latents.pt)")
    payload = load_torch(latents, what="latents file")
    if payload["sdfkit"].get("kind") != "latents":
        raise SdfkitError(f"{latents} is not a latents file (it holds a {payload['sdfkit'].get('kind')})")
    try:
        decoder, _, dec_id = decoder_from_payload(payload["decoder"], str(latents))
        grid = LatentGrid.from_state(payload["grid"], str(latents))
        band = float(payload["band"])
        norm = Normalization.from_dict(payload["normalization"])
        mesh_file, source = str(payload["mesh_file"]), Path(str(payload["source"]))
    except KeyError as exc:
        raise SdfkitError(f"{latents} lacks '{exc.args[0]}'") from None
    if grid.codes.shape[1] != decoder.latent_dim:
        raise SdfkitError(f"{latents}: latent size {grid.codes.shape[1]} does not match its decoder "
                          f"({decoder.latent_dim})")
    dev = resolve_device(device)
    field = NeuralField(decoder.to(dev), grid.to(dev), band)
    report_path = folder / REPORT
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return FittedScene(field, norm, field.bounds, folder / mesh_file, source, dec_id, report)
