"""Scenes as latent grids over a shared decoder: the loss and the field.

A :class:`Scene` binds one shape's SDF samples to its :class:`LatentGrid`.
Training (decoder and codes) and fitting (codes only) both minimise
:func:`scene_loss`; :class:`NeuralField` turns a fitted scene into the
``(N, 3) -> (N,)`` signed distance callable that extraction, metrics and the
viewer consume. Signed distances are negative inside.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import Tensor

from sdfkit.errors import SdfkitError
from sdfkit.models.latent_grid import GridSpec, LatentGrid, auto_resolution, blend_tiles, tile_activity
from sdfkit.models.siren import ModulatedSiren
from sdfkit.runtime import cpu_chunk_points
from sdfkit.settings import ModelConfig, SdfkitConfig, check_precision

if TYPE_CHECKING:
    from data_prep.sampling import SdfSamples
    from data_prep.mesh import Normalization


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SdfkitError(f"unknown device '{device}' (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SdfkitError("device 'cuda' requested but no CUDA GPU is available")
    return dev


def make_decoder(cfg: ModelConfig) -> ModulatedSiren:
    """The decoder ``cfg.kind`` names: the modulated SIREN or a baseline (``sdfkit.models.baselines``)."""
    if cfg.kind == "modulated_siren":
        return ModulatedSiren(in_dim=3, hidden=cfg.hidden, layers=cfg.layers, latent_dim=cfg.latent_dim, w0=cfg.w0)
    from sdfkit.models import baselines

    if cfg.kind == "relu_concat":
        return baselines.ReluConcatDecoder(3, cfg.hidden, cfg.layers, cfg.latent_dim, cfg.skip_layer)  # type: ignore[return-value]
    if cfg.kind == "siren_concat":
        return baselines.SirenConcatDecoder(3, cfg.hidden, cfg.layers, cfg.latent_dim, cfg.w0)  # type: ignore[return-value]
    if cfg.kind == "fourier_concat":
        return baselines.FourierConcatDecoder(3, cfg.hidden, cfg.layers, cfg.latent_dim, cfg.fourier_features,  # type: ignore[return-value]
                                              cfg.fourier_scale)
    raise SdfkitError(f"unknown model.kind '{cfg.kind}'")


@dataclasses.dataclass
class Scene:
    """One shape or scene: its latent grid and the samples that reach an active tile."""

    name: str
    grid: LatentGrid
    points: Tensor
    """(n, 3) unit-frame sample points."""
    sdf: Tensor
    """(n,) exact signed distances, negative inside."""
    normalization: "Normalization"

    def to(self, device: torch.device) -> "Scene":
        self.grid.to(device)
        self.points, self.sdf = self.points.to(device), self.sdf.to(device)
        return self


def grid_resolution(samples: "SdfSamples", cfg: SdfkitConfig, mesh_unit=None) -> int:
    """``grid.resolution``, or the automatic one from the scene's objects (needs the mesh)."""
    if cfg.grid.resolution is not None:
        return cfg.grid.resolution
    if mesh_unit is None:
        from data_prep.mesh import load_mesh

        try:
            mesh = load_mesh(samples.source)
        except SdfkitError:
            raise SdfkitError(f"cannot choose a grid resolution: the source mesh {samples.source} is not readable "
                              "(set grid.resolution)") from None
        mesh_unit = mesh.copy()
        mesh_unit.vertices = samples.normalization.to_unit(mesh.vertices)
    return auto_resolution(mesh_unit, cfg.grid.cells_per_object, cfg.grid.max_resolution)


def grid_for_samples(samples: "SdfSamples", cfg: SdfkitConfig, seed: int = 0, mesh_unit=None) -> LatentGrid:
    """The latent grid over a shape's normalised bounding box, with codes only near its surface.

    mesh_unit : the mesh in the unit frame, used to choose the resolution when
    ``grid.resolution`` is unset (read from ``samples.source`` when not given).
    """
    surface = np.asarray(samples.surface_points, dtype=np.float64)
    if cfg.grid.layout == "global":
        from sdfkit.models.baselines import GlobalGrid

        return GlobalGrid.around(surface.min(axis=0), surface.max(axis=0), cfg.model.latent_dim, cfg.grid.init_std, seed)
    resolution = grid_resolution(samples, cfg, mesh_unit)
    spec = GridSpec.around(surface.min(axis=0), surface.max(axis=0), resolution, cfg.grid.padding_cells)
    active, side = tile_activity(spec, surface, samples.points, samples.sdf, cfg.grid.margin)
    if not active.any():
        raise SdfkitError("no tile of the grid touches the surface")
    return LatentGrid(spec, active, side, cfg.model.latent_dim, cfg.grid.init_std, seed)


def make_scene(
    samples: "SdfSamples", cfg: SdfkitConfig, name: str = "scene", seed: int = 0, grid: LatentGrid | None = None, mesh_unit=None
) -> Scene:
    """Bind ``samples`` to a new (or given) latent grid, keeping the samples that reach an active tile.

    Samples whose 8 tiles all lack a code carry no gradient (their value is the
    tiles' constant), so training spends no points on them.
    """
    grid = grid if grid is not None else grid_for_samples(samples, cfg, seed, mesh_unit)
    points = torch.from_numpy(np.asarray(samples.points, dtype=np.float32))
    sdf = torch.from_numpy(np.asarray(samples.sdf, dtype=np.float32))
    with torch.no_grad():
        code, _, _, _ = grid.corners(points)
        keep = (code >= 0).any(dim=1) & grid.inside_box(points)
    if int(keep.sum()) == 0:
        raise SdfkitError(f"{name}: no sample lies near the surface")
    return Scene(name, grid, points[keep].contiguous(), sdf[keep].contiguous(), samples.normalization)


def clamped_l1(pred: Tensor, target: Tensor, band: float) -> Tensor:
    """DeepSDF's clamped L1, sum of |clamp(pred) - clamp(target)| over [-band, band], that never loses its gradient.

    pred, target : (N,) -> scalar, in the units of ``band`` (cell units).
    Where the prediction lies within the band, and where both lie beyond it on
    the same side, this is DeepSDF's loss. A prediction beyond the band whose
    clamped target is not there scores |pred - clamp(target)| instead: DeepSDF's
    clamp passes it no gradient, so a decoder whose predictions all drift out on
    one side (most samples of a scene lie outside its surfaces) could never come
    back; here it is pulled back. Both losses have the same minimisers.
    """
    goal = torch.clamp(target, -band, band)
    settled = ((target >= band) & (pred >= band)) | ((target <= -band) & (pred <= -band))
    return torch.where(settled, torch.zeros_like(pred), (pred - goal).abs()).sum()


def scene_loss(
    decoder: ModulatedSiren,
    grids: LatentGrid | list[LatentGrid],
    points: Tensor | list[Tensor],
    sdf: Tensor | list[Tensor],
    band: float,
    code_reg: float,
    point_count: int | None = None,
    code_count: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Clamped L1 in cell units plus the L2 code prior, over one or several scenes at once.

    Several scenes are evaluated in one decoder pass: their code tables are
    concatenated and each scene's tile indices offset into it, so a step costs
    one batched synthesis however many scenes it draws from.

    grids : one grid or a list; points : (B_s, 3) per grid; sdf : (B_s,) per grid.
    point_count, code_count : divide the sums by these instead of the local
    counts (a process's share of a loss averaged over several processes).
    Returns (total loss, L1 term), both scalars.
    """
    if isinstance(grids, LatentGrid):
        grids, points, sdf = [grids], [points], [sdf]  # type: ignore[list-item]
    parts: list[tuple[Tensor, ...]] = []
    offset = 0
    for grid, pts, dist in zip(grids, points, sdf):
        code, local, weight, side = grid.corners(pts)
        code = torch.where(code >= 0, code + offset, code)
        parts.append((code, local, weight, side, dist / grid.spec.cell))
        offset += grid.num_codes
    code, local, weight, side, target = (torch.cat(t) for t in zip(*parts))
    codes = grids[0].codes if len(grids) == 1 else torch.cat([g.codes for g in grids])
    pred = blend_tiles(decoder, code, local, weight, side, band, codes=codes)
    l1 = clamped_l1(pred, target, band) / (point_count or len(target))
    prior = codes.pow(2).sum() / (code_count or len(codes))
    return l1 + code_reg * prior, l1


def backward_in_chunks(
    decoder: ModulatedSiren, grid: LatentGrid, points: Tensor, sdf: Tensor, band: float, code_reg: float,
    max_points: int | None, precision: str = "fp32",
) -> Tensor:
    """Back-propagate :func:`scene_loss` of one batch, in chunks of at most ``max_points`` points.

    The gradients equal those of the whole batch at once, while the activations
    held at any time are one chunk's: on a CPU a step's large temporaries then
    stay below the allocator's mmap threshold and are reused instead of being
    paged in afresh at every step. The amplitudes of every code are computed
    once per step and their gradient gathered over the chunks before it goes
    through the modulation network, so chunks add no amplitude work. None:
    one pass. ``precision`` applies to the forward passes (:func:`precision_scope`).
    Returns the batch's L1 term (detached).
    """
    count = len(points)
    if not max_points or count <= max_points:
        with precision_scope(points.device, precision):
            loss, l1 = scene_loss(decoder, grid, points, sdf, band, code_reg)
        loss.backward()
        return l1.detach()
    with precision_scope(points.device, precision):  # the forward passes only, as autocast asks
        amps = decoder.amplitudes(grid.codes)
    table = amps.detach().requires_grad_()
    size = -(-count // -(-count // max_points))
    l1_sum = torch.zeros((), device=points.device)
    for start in range(0, count, size):
        rows = slice(start, start + size)
        code, local, weight, side = grid.corners(points[rows])
        with precision_scope(points.device, precision):
            pred = blend_tiles(decoder, code, local, weight, side, band, amps=table)
        l1 = clamped_l1(pred, sdf[rows] / grid.spec.cell, band) / count
        l1.backward()
        l1_sum += l1.detach()
    prior = grid.codes.pow(2).sum() / len(grid.codes)
    torch.autograd.backward([amps, code_reg * prior], [table.grad, None])
    return l1_sum


@contextlib.contextmanager
def precision_scope(device: torch.device, precision: str) -> Iterator[None]:
    """The arithmetic of a step's forward pass.

    ``fp32``: full float32. ``tf32``: float32 tensors with matrix products in
    TF32 on GPUs that have it. ``bf16``: autocast to bfloat16 (matrix products
    and the activations between them); the loss and the optimiser stay float32.
    """
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    elif precision == "tf32":
        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(previous)
    else:
        check_precision(precision)
        yield


@contextlib.contextmanager
def compiled_synthesis(decoder: torch.nn.Module, enabled: bool) -> Iterator[None]:
    """While active, ``decoder.synthesis`` runs through ``torch.compile``.

    The row count changes every step (points reach different numbers of active
    tiles), so the graph is compiled once with dynamic shapes instead of once
    per count. The decoder's weights and saved form are untouched.
    """
    if not enabled:
        yield
        return
    decoder.synthesis = torch.compile(decoder.synthesis, dynamic=True)
    try:
        yield
    finally:
        del decoder.synthesis


def cosine_factor(progress: float, final_fraction: float) -> float:
    """Factor on the initial learning rate: cosine from 1 at progress 0 to ``final_fraction`` at progress 1."""
    progress = min(max(progress, 0.0), 1.0)
    return float(final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + np.cos(np.pi * progress)))


def cosine_lr(step: int, total: int, final_fraction: float) -> float:
    """:func:`cosine_factor` at step ``step`` of ``total``."""
    return cosine_factor(step / max(total, 1), final_fraction)


class NeuralField:
    """A fitted scene as a signed distance callable.

    ``field(points)`` maps (N, 3) float32 unit-frame points to (N,) float32
    signed distances in the unit frame (negative inside). Points outside the
    grid's box are outside the shape and get the clamp distance. Evaluation is
    batched (``chunk`` points at a time) under ``torch.inference_mode``, on the
    device the decoder and grid live on.
    """

    def __init__(self, decoder: ModulatedSiren, grid: LatentGrid, band: float, chunk: int | None = None):
        self.decoder, self.grid, self.band = decoder.eval(), grid.eval(), float(band)
        self.device = grid.codes.device
        self.chunk = chunk or (1 << 18 if self.device.type == "cuda" else cpu_chunk_points(decoder.hidden))
        with torch.inference_mode():
            self.amps = decoder.amplitudes(grid.codes)
        lo, hi = grid.spec.bounds
        self.bounds = (lo.astype(np.float32), hi.astype(np.float32))

    @torch.inference_mode()
    def evaluate(self, points: Tensor) -> Tensor:
        """(N, 3) tensor on the field's device -> (N,) unit-frame signed distances."""
        code, local, weight, side = self.grid.corners(points)
        cells = blend_tiles(self.decoder, code, local, weight, side, self.band, amps=self.amps)
        outside = ~self.grid.inside_box(points)
        cells = torch.where(outside, torch.full_like(cells, self.band), cells)
        return cells * self.grid.spec.cell

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        out = np.empty(len(points), dtype=np.float32)
        for start in range(0, len(points), self.chunk):
            batch = torch.from_numpy(points[start : start + self.chunk]).to(self.device)
            out[start : start + len(batch)] = self.evaluate(batch).float().cpu().numpy()
        return out
