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
from data_prep.yaml_io import from_dict, to_dict
from sdfkit.config import EncoderConfig, EncoderModelConfig, SdfkitConfig, load_settings
from sdfkit.decoder_io import SHIPPED_DECODER, decoder_id
from sdfkit.errors import SdfkitError
from sdfkit.io import load_torch, save_torch
from sdfkit.loss import clamped_l1
from sdfkit.models.latent_grid import LatentGrid, blend_tiles
from sdfkit.models.siren import ModulatedSiren
from sdfkit.optim import cosine_factor
from sdfkit.samples import random_rotation
from sdfkit.scene import Scene, make_scene

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
    keys = (ijk[:, None, :] * sub + offsets[None]).reshape(-1, 3)  # (T * L^3, 3) on the 1/sub-cell lattice
    unique, index = np.unique(keys, axis=0, return_inverse=True)
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
        cfg = from_dict(EncoderConfig, payload["config"])
        encoder = CodeEncoder(cfg.model, int(payload["latent_dim"]))
        encoder.load_state_dict(payload["state_dict"])
        return encoder, str(payload["decoder_id"])
    except SdfkitError as exc:
        raise SdfkitError(f"{path}: {exc}") from None
    except (KeyError, TypeError, RuntimeError, ValueError):
        raise SdfkitError(f"{path} is not a valid sdfkit encoder (missing or mismatched weights)") from None


@dataclass
class TileSamples:
    """Training rows of many tiles: each a sample seen from one of the 8 tiles around it.

    features : (T, lattice^3) every tile's encoder input; ptr : (T + 1,) rows of tile t are
    ``ptr[t]:ptr[t + 1]``; local : (R, 3) the sample in that tile's coordinates; target : (R,)
    exact SDF in cell units (negative inside); weight : (R,) the tile's trilinear weight there.
    """

    features: Tensor
    ptr: Tensor
    local: Tensor
    target: Tensor
    weight: Tensor

    @property
    def num_tiles(self) -> int:
        return len(self.features)


def tile_rows(scene: Scene, features: Tensor, min_weight: float = 0.02, chunk: int = 1 << 16) -> TileSamples:
    """Every (sample, active tile) pair of ``scene`` with blending weight >= ``min_weight``, grouped by tile."""
    grid, rows = scene.grid, []
    with torch.no_grad():
        for s in range(0, len(scene.points), chunk):
            code, local, weight, _ = grid.corners(scene.points[s : s + chunk])
            keep = (code >= 0) & (weight >= min_weight)
            target = (scene.sdf[s : s + chunk] / grid.spec.cell)[:, None].expand_as(code)
            rows.append((code[keep], local[keep], target[keep], weight[keep]))
    code, local, target, weight = (torch.cat(t) for t in zip(*rows))
    order = torch.argsort(code, stable=True)
    counts = torch.bincount(code, minlength=grid.num_codes)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    return TileSamples(features, ptr, local[order].contiguous(), target[order].contiguous(), weight[order].contiguous())


def join_tiles(parts: list[TileSamples]) -> TileSamples:
    """One table of the tiles of several scenes."""
    offsets = np.cumsum([0] + [int(p.ptr[-1]) for p in parts[:-1]])
    ptr = torch.cat([parts[0].ptr[:1]] + [p.ptr[1:] + int(o) for p, o in zip(parts, offsets)])
    return TileSamples(torch.cat([p.features for p in parts]), ptr, torch.cat([p.local for p in parts]),
                       torch.cat([p.target for p in parts]), torch.cat([p.weight for p in parts]))


def tile_loss(
    decoder: ModulatedSiren, encoder: CodeEncoder, data: TileSamples, tiles: Tensor, rows_per_tile: int, band: float,
    code_reg: float, gen: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Weighted per-tile clamped L1 of ``tiles``' encoded codes on ``rows_per_tile`` of their rows each.

    sum_k w_k |f_k(x) - s(x)| bounds the blended error |sum_k w_k f_k(x) - s(x)| from above
    (the weights sum to 1), and costs one decoder row per (sample, tile) instead of eight
    per sample; the fit's refinement then works on the blend itself.
    tiles : (B,) tile indices with at least one row. Returns (total, weighted L1) scalars.
    """
    start, count = data.ptr[tiles], data.ptr[tiles + 1] - data.ptr[tiles]
    pick = torch.rand(len(tiles), rows_per_tile, generator=gen)
    rows = (start[:, None] + (pick * count[:, None]).long()).reshape(-1)
    codes = encoder(data.features[tiles])
    amps = decoder.amplitudes(codes)
    slot = torch.arange(len(tiles)).repeat_interleave(rows_per_tile)
    pred = decoder.synthesis(data.local[rows], amps, slot)
    goal = torch.clamp(data.target[rows], -band, band)
    target = data.target[rows]
    settled = ((target >= band) & (pred >= band)) | ((target <= -band) & (pred <= -band))
    err = torch.where(settled, torch.zeros_like(pred), (pred - goal).abs())
    weight = data.weight[rows]
    l1 = (err * weight).sum() / weight.sum()
    return l1 + code_reg * codes.pow(2).sum(-1).mean(), l1


def training_tiles(cfg: EncoderConfig, dec_cfg: SdfkitConfig, log: Callable[[str], None] = print) -> TileSamples:
    """The tiles of every training mesh and rotation, on the decoder's grid settings."""
    scfg = dataclasses.replace(dec_cfg.sampling.resolve(seed=cfg.train.seed), num_points=cfg.train.num_points)
    parts = []
    for path in cfg.train.data:
        mesh = load_mesh(path)
        for rotation in range(cfg.train.rotations + 1):
            turned = mesh.copy()
            if rotation:
                turned.vertices = np.asarray(mesh.vertices) @ random_rotation(rotation).T
            unit, norm = normalize_mesh(turned, scfg.radius)
            samples = sample_unit_mesh(unit, norm, scfg, str(path), "")
            scene = make_scene(samples, dec_cfg, name=f"{Path(path).stem}-r{rotation}", mesh_unit=unit)
            parts.append(tile_rows(scene, tile_features(MeshSDF(unit), scene.grid, cfg.model)))
            log(f"{scene.name}: {scene.grid.num_codes} tiles, {int(parts[-1].ptr[-1])} rows")
    if not parts:
        raise SdfkitError("encoder training needs at least one mesh (train.data)")
    return join_tiles(parts)


def train_encoder(
    decoder: ModulatedSiren, dec_cfg: SdfkitConfig, cfg: EncoderConfig, data: TileSamples,
    log: Callable[[str], None] = print,
) -> tuple[CodeEncoder, dict]:
    """Train an encoder through the frozen ``decoder`` on ``data`` (from :func:`training_tiles`).

    Each step draws ``tiles_per_step`` tiles with samples and ``rows_per_tile`` of their rows.
    Returns the encoder and a summary (steps, seconds, last weighted L1 in cells).
    """
    torch.manual_seed(cfg.train.seed)
    for p in decoder.parameters():
        p.requires_grad_(False)
    encoder = CodeEncoder(cfg.model, dec_cfg.model.latent_dim)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=cfg.train.lr)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    usable = torch.nonzero(data.ptr[1:] > data.ptr[:-1]).squeeze(1)
    if len(usable) == 0:
        raise SdfkitError("no training tile holds a sample")
    t0, step, smooth = time.perf_counter(), 0, float("nan")
    for step in range(1, cfg.train.steps + 1):
        done = (step - 1) / cfg.train.steps
        if cfg.train.max_seconds:
            done = max(done, (time.perf_counter() - t0) / cfg.train.max_seconds)
        for group in optimizer.param_groups:
            group["lr"] = cfg.train.lr * cosine_factor(done, cfg.train.lr_final_fraction)
        tiles = usable[torch.randint(len(usable), (cfg.train.tiles_per_step,), generator=gen)]
        optimizer.zero_grad(set_to_none=True)
        loss, l1 = tile_loss(decoder, encoder, data, tiles, cfg.train.rows_per_tile, dec_cfg.loss.band,
                             dec_cfg.loss.code_reg, gen)
        loss.backward()
        optimizer.step()
        value = float(l1.detach())
        smooth = value if step == 1 else 0.95 * smooth + 0.05 * value
        if step % cfg.train.log_every == 0 or step == 1:
            log(f"step {step}  L1 {smooth:.4f} cells  {time.perf_counter() - t0:.0f} s")
        if cfg.train.max_seconds and time.perf_counter() - t0 >= cfg.train.max_seconds:
            break
    if not all(torch.isfinite(p).all() for p in encoder.parameters()):
        raise SdfkitError("encoder training diverged (non-finite weights); try a lower train.lr")
    return encoder.eval(), {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "final_l1_cells": smooth}


def save_encoder(path: str | Path, encoder: CodeEncoder, cfg: EncoderConfig, decoder: ModulatedSiren, **info) -> None:
    """Write an encoder file atomically."""
    save_torch(encoder_payload(encoder, cfg, decoder, **info), path)


def sample_l1(decoder: ModulatedSiren, scene: Scene, band: float, count: int = 1 << 14, seed: int = 0,
              chunk: int = 1 << 14) -> float:
    """Mean clamped L1 (cells) of the scene's current codes on a fixed draw of ``count`` samples.

    The same draw for the same scene and seed, so two code tables are compared on equal terms.
    """
    gen = torch.Generator(device=scene.points.device).manual_seed(seed)
    idx = torch.randint(len(scene.points), (min(count, len(scene.points)),), generator=gen, device=scene.points.device)
    total = 0.0
    with torch.no_grad():
        amps = decoder.amplitudes(scene.grid.codes)
        for s in range(0, len(idx), chunk):
            rows = idx[s : s + chunk]
            code, local, weight, side = scene.grid.corners(scene.points[rows])
            pred = blend_tiles(decoder, code, local, weight, side, band, amps=amps)
            total += float(clamped_l1(pred, scene.sdf[rows] / scene.grid.spec.cell, band))
    return total / max(len(idx), 1)
