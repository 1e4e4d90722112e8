"""Reading a fit's output folder back: the field, its transform and its meshes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from sdfkit.autodecoder import NeuralField, resolve_device
from sdfkit.decoder_io import decoder_from_payload
from sdfkit.errors import SdfkitError
from sdfkit.io import load_torch
from sdfkit.models.latent_grid import LatentGrid


@dataclasses.dataclass
class FittedScene:
    """A fitted scene: ``field`` maps (N, 3) unit-frame points to (N,) signed distances (negative inside)."""

    field: NeuralField
    normalization: "object"
    bounds: tuple[np.ndarray, np.ndarray]
    mesh_path: Path
    source: Path
    decoder_id: str
    report: dict


def load_fitted(path: str | Path, device: str = "cpu") -> FittedScene:
    """Load ``DIR`` (or ``DIR/latents.pt``) written by ``sdfkit fit``."""
    from data_prep.mesh import Normalization

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    latents = path / "latents.pt" if path.is_dir() else path
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
        raise SdfkitError(f"{latents}: latent size {grid.codes.shape[1]} does not match its decoder ({decoder.latent_dim})")
    dev = resolve_device(device)
    field = NeuralField(decoder.to(dev), grid.to(dev), band)
    report_path = folder / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return FittedScene(field, norm, field.bounds, folder / mesh_file, source, dec_id, report)
