"""A fit's output folder, written and read here only.

Files: ``mesh.<format>`` (the extracted mesh, in the input's units),
``latents.pt`` (the decoder, the latent grid, the clamp band, the input's
normalisation, where the input came from and its surface points, which decide
which parts of a mesh the input supports; plain data, loaded with
``weights_only=True``), ``report.json`` (metrics, timings, settings) and, when
drawn, ``preview.png``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import trimesh

from data_prep.mesh import Normalization
from sdfkit.config import SdfkitConfig
from sdfkit.decoder_io import decoder_from_payload, decoder_payload
from sdfkit.errors import SdfkitError
from sdfkit.extract import drop_unsupported_parts
from sdfkit.field import NeuralField
from sdfkit.io import load_torch, save_torch
from sdfkit.models.latent_grid import GridSpec, LatentGrid
from sdfkit.models.siren import ModulatedSiren
from sdfkit.runtime import resolve_device

LATENTS = "latents.pt"
REPORT = "report.json"
PREVIEW = "preview.png"
LATENTS_VERSION = 1
#: Parts of the extracted mesh wholly farther than this many cells from the input are dropped
#: (:func:`unsupported_distance`). The parts of the field that no sample constrains came 0.42 cells from the input
#: or farther, while every vertex of the fitted surfaces lay within 0.11 cells of it
#: (``benchmarks/results/stray_parts-*-20261206.json``).
UNSUPPORTED_CELLS = 0.25


def mesh_file_name(fmt: str, full: bool = False) -> str:
    """The extracted mesh's file name for an export format (``obj`` -> ``mesh.obj``; the unsimplified one,
    ``fit --keep-full``: ``mesh_full.obj``)."""
    return f"mesh_full.{fmt}" if full else f"mesh.{fmt}"


def unsupported_distance(spec: GridSpec, resolution: int, scale: float) -> float:
    """How far from every input point a part of the extracted mesh must lie, in the input's units, to be dropped
    (:func:`sdfkit.extract.drop_unsupported_parts`): :data:`UNSUPPORTED_CELLS` cells of the latent grid, and at
    least two lattice steps of the extraction so that a real part's vertices, which sit within a step of the
    surface its samples lie on, are never that far."""
    step = float(np.max(np.asarray(spec.cells) * spec.cell)) / max(resolution - 1, 1)
    return max(UNSUPPORTED_CELLS * spec.cell, 2.0 * step) * scale


def drop_unsupported(mesh: trimesh.Trimesh, support: np.ndarray, normalization: Normalization, spec: GridSpec,
                     resolution: int, level: float = 0.0) -> tuple[trimesh.Trimesh, dict]:
    """``mesh`` (input units, extracted at ``resolution`` and iso ``level`` in input units) without the parts that
    no point of ``support`` ((M, 3), unit frame) reaches (:func:`sdfkit.extract.drop_unsupported_parts`): the rule
    of ``sdfkit fit`` and of every later extraction of its ``latents.pt``. The reach (:func:`unsupported_distance`)
    grows by ``|level|``: an offset surface lies that much farther from the input."""
    reach = unsupported_distance(spec, resolution, normalization.scale) + abs(level)
    return drop_unsupported_parts(mesh, normalization.from_unit(support), reach)


def write_latents(path: Path, decoder: ModulatedSiren, cfg: SdfkitConfig, grid: LatentGrid,
                  normalization: Normalization, source: Path, mesh_hash: str, mesh_file: str,
                  support: np.ndarray) -> None:
    """Write ``latents.pt`` atomically: everything :func:`load_fitted` needs to rebuild the field, and ``support``
    (M, 3), the input's surface points in the unit frame, with which :meth:`FittedScene.drop_unsupported` drops the
    parts the fit dropped from any later extraction."""
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
            "support": torch.from_numpy(np.ascontiguousarray(support, dtype=np.float32)),
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
    support: np.ndarray | None = None
    """(M, 3) float32 unit-frame surface points of the input (None: a latents file written before they were kept)."""

    def drop_unsupported(self, mesh: trimesh.Trimesh, resolution: int,
                         level: float = 0.0) -> tuple[trimesh.Trimesh, dict | None]:
        """:func:`drop_unsupported` with the fit's own surface points, grid and normalisation: the parts ``sdfkit
        fit`` dropped from its own mesh; (``mesh``, None) when the file keeps no surface points."""
        if self.support is None:
            return mesh, None
        return drop_unsupported(mesh, self.support, self.normalization, self.field.grid.spec, resolution, level)


def _surface_points(stored: object, latents: Path) -> np.ndarray | None:
    """A latents file's surface points as (M, 3) float32 (None when it keeps none); one line when they are not."""
    if stored is None:
        return None
    try:
        points = np.asarray(stored, dtype=np.float32)
    except (TypeError, ValueError):
        points = np.empty((0, 0), dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3 or not np.isfinite(points).all():
        raise SdfkitError(f"{latents} holds invalid surface points")
    return points


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
        support = _surface_points(payload.get("support"), latents)
    except KeyError as exc:
        raise SdfkitError(f"{latents} lacks '{exc.args[0]}'") from None
    if grid.codes.shape[1] != decoder.latent_dim:
        raise SdfkitError(f"{latents}: latent size {grid.codes.shape[1]} does not match its decoder "
                          f"({decoder.latent_dim})")
    dev = resolve_device(device)
    field = NeuralField(decoder.to(dev), grid.to(dev), band)
    report_path = folder / REPORT
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return FittedScene(field, norm, field.bounds, folder / mesh_file, source, dec_id, report, support)
