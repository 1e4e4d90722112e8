"""Codes in one pass: an encoder from a tile's exact SDF lattice to its latent code.

The auto-encoder configuration of Mehta et al. 2021 (section 3.4.1) for 3D
tiles. Preprocessing knows the exact signed distance (negative inside) of the
input mesh; the encoder reads it on a small lattice over each active tile's
region ([-1, 1]^3 in tile coordinates) and predicts that tile's code, so a new
shape gets all its codes from one batched forward pass instead of hundreds of
optimisation steps from noise. It is trained through the frozen decoder with the
fitting objective itself (blended clamped L1 plus the code prior), on the
training meshes' tiles.

Encoder files hold state dicts and plain data only (``weights_only`` loading),
and name the decoder they were trained with: an encoder serves one decoder.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from data_prep.mesh import load_mesh, normalize_mesh
from data_prep.sampling import sample_unit_mesh
from data_prep.sdf import MeshSDF
from data_prep.sources import resolve_data, source_mesh
from data_prep.yaml_io import from_dict, to_dict
from sdfkit.config import EncoderConfig, EncoderModelConfig, SdfkitConfig, load_settings
from sdfkit.decoder_io import SHIPPED_DECODER, decoder_id
from sdfkit.errors import SdfkitError
from sdfkit.io import load_torch, save_torch
from sdfkit.loss import clamped_l1
from sdfkit.models.latent_grid import LatentGrid, blend_tiles, corner_coordinates
from sdfkit.models.siren import ModulatedSiren
from sdfkit.optim import cosine_factor
from sdfkit.samples import random_rotation
from sdfkit.scene import BatchDraw, Scene, make_scene

#: The encoder shipped beside the decoder; it serves that decoder only.
SHIPPED_ENCODER = SHIPPED_DECODER.with_name("encoder.pt")
FORMAT_VERSION = 1


def load_encoder_config(path: str | Path) -> EncoderConfig:
    """The ``encoder`` section of a config file (``configs/encoder.yaml``), unknown keys rejected by name."""
    return load_settings(path).encoder


class CodeEncoder(nn.Module):
    """MLP from a tile's clamped SDF lattice (T, lattice^3) to its code (T, latent_dim)."""

    def __init__(self, cfg: EncoderModelConfig, latent_dim: int):
        super().__init__()
        self.cfg, self.latent_dim = cfg, latent_dim
        sizes = [cfg.lattice**3] + [cfg.hidden] * (cfg.layers - 1) + [latent_dim]
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            mods.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        self.net = nn.Sequential(*mods)
        last = mods[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():  # start at the codes a random fit starts from: near zero
            last.weight.mul_(0.01)
            last.bias.zero_()

    def forward(self, features: Tensor) -> Tensor:
        """features : (T, lattice^3) cell units -> (T, latent_dim)."""
        return self.net(features / self.cfg.clamp)


def lattice_points(grid: LatentGrid, lattice: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-frame points of every active tile's lattice, each shared point once.

    A tile's lattice spans its region [-1, 1]^3 in ``lattice`` points per axis;
    with an odd count neighbouring tiles share points, so the exact SDF is
    computed once per point. Returns points (P, 3) float64 and index
    (T, lattice^3) into them, tiles in code order.
    """
    sub = (lattice - 1) // 2
    vertex = np.flatnonzero(grid.lookup.cpu().numpy() >= 0)  # flat vertex ids in code order
    ijk = np.stack(np.unravel_index(vertex, grid.spec.vertex_shape), axis=-1)  # (T, 3)
    ticks = np.arange(-sub, sub + 1)
    offsets = np.stack(np.meshgrid(ticks, ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 3)
    keys = (ijk[:, None, :] * sub + offsets[None] + sub).reshape(-1, 3)  # (T * L^3, 3) >= 0, 1/sub-cell lattice
    dims = tuple(int(d) for d in keys.max(axis=0) + 1)
    # Rows as one int64 each, in the same (x, y, z) order: np.unique over rows sorts structured records, which
    # took seconds for a scene's tens of thousands of tiles.
    flat, index = np.unique(np.ravel_multi_index(tuple(keys.T), dims), return_inverse=True)
    unique = np.stack(np.unravel_index(flat, dims), axis=-1) - sub
    points = np.asarray(grid.spec.origin) + unique * (grid.spec.cell / sub)
    return points, index.reshape(len(vertex), -1)


def tile_features(sdf: Callable[[np.ndarray], np.ndarray], grid: LatentGrid, cfg: EncoderModelConfig) -> Tensor:
    """The encoder's input: every active tile's SDF lattice in cell units, clamped.

    sdf : (P, 3) unit-frame points -> (P,) exact signed distances, negative inside
    (e.g. :class:`data_prep.sdf.MeshSDF` of the unit-frame mesh).
    Returns (T, lattice^3) float32, tiles in code order.
    """
    points, index = lattice_points(grid, cfg.lattice)
    values = np.asarray(sdf(points), dtype=np.float32) / np.float32(grid.spec.cell)
    values = np.clip(values, -cfg.clamp, cfg.clamp)
    return torch.from_numpy(values[index])


@torch.no_grad()
def encode_codes(encoder: CodeEncoder, features: Tensor, chunk: int = 1 << 15) -> Tensor:
    """(T, lattice^3) features -> (T, latent_dim) codes, in chunks."""
    encoder.eval()
    return torch.cat([encoder(features[s : s + chunk]) for s in range(0, len(features), chunk)])


def encoder_payload(encoder: CodeEncoder, cfg: EncoderConfig, decoder: ModulatedSiren, **info) -> dict:
    return {
        "sdfkit": {"kind": "encoder", "version": FORMAT_VERSION},
        "decoder_id": decoder_id(decoder),
        "latent_dim": encoder.latent_dim,
        "config": to_dict(cfg),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "info": info,
    }


def load_encoder(path: str | Path | None = None) -> tuple[CodeEncoder, str]:
    """(encoder, id of the decoder it serves) from an encoder file (the shipped one when ``path`` is None)."""
    path = Path(path) if path is not None else SHIPPED_ENCODER
    payload = load_torch(path, what="encoder")
    if payload.get("sdfkit", {}).get("kind") != "encoder":
        raise SdfkitError(f"{path} is not an encoder file")
    try:
        # The network is all a fit needs; how it was trained is a record (and its keys may have changed since).
        model = from_dict(EncoderModelConfig, payload["config"]["model"])
        encoder = CodeEncoder(model, int(payload["latent_dim"]))
        encoder.load_state_dict(payload["state_dict"])
        return encoder, str(payload["decoder_id"])
    except SdfkitError as exc:
        raise SdfkitError(f"{path}: {exc}") from None
    except (KeyError, TypeError, RuntimeError, ValueError):
        raise SdfkitError(f"{path} is not a valid sdfkit encoder (missing or mismatched weights)") from None


@dataclass
class CellSamples:
    """Training samples of many scenes, grouped by the grid cell that holds them.

    A sample's blended value depends on the 8 tiles at its cell's corners and on nothing else, so a step that
    draws whole cells encodes only those cells' tiles and still scores the blend exactly.

    features : (T, lattice^3) the encoder input of every active tile of every scene;
    tiles : (C, 8) long, the row of ``features`` at each corner of cell c (-1: the corner has no code);
    side : (C, 8) -1/+1, the side of corners without a code;
    ptr : (C + 1,) the samples of cell c are rows ``ptr[c]:ptr[c + 1]``;
    frac : (R, 3) each sample's place in its cell, in [0, 1]^3;
    target : (R,) exact SDF in cell units (negative inside).
    """

    features: Tensor
    tiles: Tensor
    side: Tensor
    ptr: Tensor
    frac: Tensor
    target: Tensor

    @property
    def num_cells(self) -> int:
        return len(self.tiles)


def cell_samples(scene: Scene, features: Tensor) -> CellSamples:
    """``scene``'s samples grouped by cell, for the cells with at least one active corner."""
    grid = scene.grid
    with torch.no_grad():
        base, frac = grid.cells_of(scene.points)
        cells = torch.tensor(grid.spec.cells)
        flat = (base * torch.stack([cells[1] * cells[2], cells[2], torch.tensor(1)])).sum(-1)
        ids, inverse = torch.unique(flat, return_inverse=True)
        order = torch.argsort(inverse, stable=True)
        first = order[torch.searchsorted(inverse[order], torch.arange(len(ids)))]  # one sample of each cell
        tiles, side = grid.cell_tiles(base[first])
    keep = (tiles >= 0).any(dim=1)  # samples of cells without a code carry no gradient
    counts = torch.bincount(inverse, minlength=len(ids))
    rows = keep[inverse[order]]
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts[keep], 0)])
    return CellSamples(features, tiles[keep], side[keep], ptr, frac[order][rows].contiguous(),
                       (scene.sdf / grid.spec.cell)[order][rows].contiguous())


def join_cells(parts: list[CellSamples]) -> CellSamples:
    """One table of the cells of several scenes (their tile rows offset into one feature table)."""
    tile_offsets = np.cumsum([0] + [len(p.features) for p in parts[:-1]])
    row_offsets = np.cumsum([0] + [int(p.ptr[-1]) for p in parts[:-1]])
    tiles = [torch.where(p.tiles >= 0, p.tiles + int(o), p.tiles) for p, o in zip(parts, tile_offsets)]
    ptr = torch.cat([parts[0].ptr[:1]] + [p.ptr[1:] + int(o) for p, o in zip(parts, row_offsets)])
    return CellSamples(torch.cat([p.features for p in parts]), torch.cat(tiles), torch.cat([p.side for p in parts]),
                       ptr, torch.cat([p.frac for p in parts]), torch.cat([p.target for p in parts]))


def cell_loss(
    decoder: ModulatedSiren, encoder: CodeEncoder, data: CellSamples, cells: Tensor, samples_per_cell: int,
    band: float, code_reg: float, gen: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """The fitting objective of the encoded codes on ``samples_per_cell`` samples of each cell in ``cells`` (B,).

    The blended clamped L1 of :func:`sdfkit.loss.scene_loss`, with each used tile's code from the encoder:
    the auto-encoder's training objective. A per-tile objective (each tile fitted on its own region) is
    cheaper but aims elsewhere: codes fitted by the blend score 0.2167 cells on it against 0.0041 on the
    blend, and its own optimum blends to 0.0339 (penguin, ``benchmarks/results/encoder-objective-penguin.md``).
    Returns (total, L1) scalars.
    """
    start, count = data.ptr[cells], data.ptr[cells + 1] - data.ptr[cells]
    pick = torch.rand(len(cells), samples_per_cell, generator=gen)
    rows = (start[:, None] + (pick * count[:, None]).long()).reshape(-1)
    local, weight = corner_coordinates(data.frac[rows])
    tiles = data.tiles[cells].repeat_interleave(samples_per_cell, dim=0)
    side = data.side[cells].repeat_interleave(samples_per_cell, dim=0)
    active = tiles >= 0
    used, slot = torch.unique(tiles[active], return_inverse=True)
    code = torch.full_like(tiles, -1).masked_scatter(active, slot)
    codes = encoder(data.features[used])
    pred = blend_tiles(decoder, code, local, weight, side, band, amps=decoder.amplitudes(codes))
    l1 = clamped_l1(pred, data.target[rows], band) / len(rows)
    return l1 + code_reg * codes.pow(2).sum(-1).mean(), l1


def encoder_scene(path: str | Path, dec_cfg: SdfkitConfig, cfg: EncoderConfig, rotation: int = 0,
                  num_points: int | None = None) -> tuple[Scene, Tensor]:
    """One mesh (under random rotation number ``rotation``; 0: as it is) as a scene on the decoder's grid
    settings, with its tiles' encoder features."""
    sampling = dec_cfg.sampling.resolve(seed=cfg.train.seed)
    scfg = dataclasses.replace(sampling, num_points=num_points or cfg.train.num_points)
    mesh = load_mesh(path)
    if rotation:
        mesh.vertices = np.asarray(mesh.vertices) @ random_rotation(rotation).T
    unit, norm = normalize_mesh(mesh, scfg.radius)
    samples = sample_unit_mesh(unit, norm, scfg, str(path), "")
    scene = make_scene(samples, dec_cfg, name=f"{Path(path).stem}-r{rotation}", mesh_unit=unit)
    return scene, tile_features(MeshSDF(unit), scene.grid, cfg.model)


def training_cells(cfg: EncoderConfig, dec_cfg: SdfkitConfig, log: Callable[[str], None] = print) -> CellSamples:
    """The cells of every training mesh and rotation (``train.data``: meshes, folders, globs, split files)."""
    parts = []
    for path in resolve_data(cfg.train.data):
        for rotation in range(cfg.train.rotations + 1):
            scene, features = encoder_scene(source_mesh(path), dec_cfg, cfg, rotation)
            parts.append(cell_samples(scene, features))
            log(f"{scene.name}: {scene.grid.num_codes} tiles, {parts[-1].num_cells} cells, "
                f"{int(parts[-1].ptr[-1])} samples")
    if not parts:
        raise SdfkitError("encoder training needs at least one mesh (train.data)")
    return join_cells(parts)


def validation_scenes(cfg: EncoderConfig, dec_cfg: SdfkitConfig) -> list[tuple[Scene, Tensor]]:
    """``train.val_data``'s meshes as scenes with their features, sampled as a fit samples them."""
    return [encoder_scene(source_mesh(path), dec_cfg, cfg, num_points=dec_cfg.sampling.resolve().num_points)
            for path in resolve_data(cfg.train.val_data)] if cfg.train.val_data else []


def validation_l1(decoder: ModulatedSiren, encoder: CodeEncoder, scenes: list[tuple[Scene, Tensor]],
                  band: float) -> list[float]:
    """The blended L1 (cells) of each held-out scene's encoded codes (:func:`sample_l1`)."""
    out = []
    for scene, features in scenes:
        with torch.no_grad():
            scene.grid.codes.copy_(encode_codes(encoder, features))
        out.append(sample_l1(decoder, scene, band))
    encoder.train()
    return out


def initial_encoder(cfg: EncoderConfig, decoder: ModulatedSiren, latent_dim: int) -> CodeEncoder:
    """Random weights drawn from ``train.seed``, or ``train.init``'s encoder when it serves ``decoder`` with the
    network of ``model``."""
    # Seeded here, not by the caller: the CLI builds the encoder before training starts (to refuse a bad init
    # file before sampling), and the same seed must give the same weights on either path.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        encoder = CodeEncoder(cfg.model, latent_dim)
    if cfg.train.init is None:
        return encoder
    start, served = load_encoder(cfg.train.init)
    if served != decoder_id(decoder):
        raise SdfkitError(f"train.init {cfg.train.init} was trained for another decoder than this one")
    if start.cfg != cfg.model:  # the clamp shapes the input, not the weights: a state dict would not tell
        raise SdfkitError(f"train.init {cfg.train.init} has model {to_dict(start.cfg)}, not encoder.model's "
                          f"{to_dict(cfg.model)}")
    encoder.load_state_dict(start.state_dict())
    return encoder


def train_encoder(
    decoder: ModulatedSiren, dec_cfg: SdfkitConfig, cfg: EncoderConfig, data: CellSamples,
    log: Callable[[str], None] = print, val: list[tuple[Scene, Tensor]] | None = None,
    start: CodeEncoder | None = None,
) -> tuple[CodeEncoder, dict]:
    """Train an encoder through the frozen ``decoder`` on ``data`` (from :func:`training_cells`).

    Each step draws ``cells_per_step`` cells and ``samples_per_cell`` samples of each (:func:`cell_loss`).
    ``val`` (from :func:`validation_scenes`): held-out scenes whose blended L1 is logged every
    ``val_every`` steps. ``start``: the network to train (default: :func:`initial_encoder`'s). Returns the encoder
    and a summary (steps, seconds, last L1 in cells, held-out L1).
    """
    torch.manual_seed(cfg.train.seed)
    for p in decoder.parameters():
        p.requires_grad_(False)
    encoder = start if start is not None else initial_encoder(cfg, decoder, dec_cfg.model.latent_dim)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=cfg.train.lr)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    if data.num_cells == 0:
        raise SdfkitError("no training cell holds a sample")
    t0, step, smooth, held_out = time.perf_counter(), 0, float("nan"), []
    for step in range(1, cfg.train.steps + 1):
        done = (step - 1) / cfg.train.steps
        if cfg.train.max_seconds:
            done = max(done, (time.perf_counter() - t0) / cfg.train.max_seconds)
        for group in optimizer.param_groups:
            group["lr"] = cfg.train.lr * cosine_factor(done, cfg.train.lr_final_fraction)
        cells = torch.randint(data.num_cells, (cfg.train.cells_per_step,), generator=gen)
        optimizer.zero_grad(set_to_none=True)
        loss, l1 = cell_loss(decoder, encoder, data, cells, cfg.train.samples_per_cell, dec_cfg.loss.band,
                             dec_cfg.loss.code_reg, gen)
        loss.backward()
        optimizer.step()
        value = float(l1.detach())
        smooth = value if step == 1 else 0.95 * smooth + 0.05 * value
        last = step == cfg.train.steps or bool(cfg.train.max_seconds
                                               and time.perf_counter() - t0 >= cfg.train.max_seconds)
        if val and (step % cfg.train.val_every == 0 or last):
            held_out = validation_l1(decoder, encoder, val, dec_cfg.loss.band)
        if step % cfg.train.log_every == 0 or step == 1 or last:
            shown = f"  held-out L1 {' '.join(f'{v:.4f}' for v in held_out)}" if held_out else ""
            log(f"step {step}  L1 {smooth:.4f} cells{shown}  {time.perf_counter() - t0:.0f} s")
        if last:
            break
    if not all(torch.isfinite(p).all() for p in encoder.parameters()):
        raise SdfkitError("encoder training diverged (non-finite weights); try a lower train.lr")
    summary = {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "final_l1_cells": smooth}
    if held_out:
        summary["held_out_l1_cells"] = [round(v, 5) for v in held_out]
    return encoder.eval(), summary


def save_encoder(path: str | Path, encoder: CodeEncoder, cfg: EncoderConfig, decoder: ModulatedSiren, **info) -> None:
    """Write an encoder file atomically."""
    save_torch(encoder_payload(encoder, cfg, decoder, **info), path)


def sample_l1(decoder: ModulatedSiren, scene: Scene, band: float, count: int = 1 << 14, seed: int = 0,
              chunk: int = 1 << 14, surface_fraction: float = 0.0, surface_band: float = 0.25) -> float:
    """Mean clamped L1 (cells) of the scene's current codes on a fixed draw of ``count`` samples.

    The same draw for the same scene and seed, so two code tables are compared on equal terms; drawn as a fit
    draws its batches (:class:`sdfkit.scene.BatchDraw`: ``surface_fraction`` of them near the surface), so the
    score weighs the samples as the refinement's loss does.
    """
    gen = torch.Generator(device=scene.points.device).manual_seed(seed)
    idx = BatchDraw.of(scene, min(count, len(scene.points)), surface_fraction, surface_band).sample(gen)
    total = 0.0
    with torch.no_grad():
        amps = decoder.amplitudes(scene.grid.codes)
        for s in range(0, len(idx), chunk):
            rows = idx[s : s + chunk]
            code, local, weight, side = scene.grid.corners(scene.points[rows])
            pred = blend_tiles(decoder, code, local, weight, side, band, amps=amps)
            total += float(clamped_l1(pred, scene.sdf[rows] / scene.grid.spec.cell, band))
    return total / max(len(idx), 1)
