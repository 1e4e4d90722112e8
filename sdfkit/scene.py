"""Scenes: one shape's SDF samples bound to its latent grid, and how that grid is laid out.

A :class:`Scene` is what training and fitting optimise; the grid's resolution
is given by the config or chosen from the sizes of the objects in the mesh.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import trimesh
from torch import Tensor

from data_prep.errors import SdfkitError
from data_prep.mesh import Normalization, load_mesh
from data_prep.sampling import SdfSamples
from sdfkit.config import SdfkitConfig
from sdfkit.models.latent_grid import GlobalGrid, GridSpec, LatentGrid, auto_grid, tile_activity


@dataclasses.dataclass
class Scene:
    """One shape or scene: its latent grid and the samples that reach an active tile."""

    name: str
    grid: LatentGrid
    points: Tensor
    """(n, 3) unit-frame sample points."""
    sdf: Tensor
    """(n,) exact signed distances, negative inside."""
    normalization: Normalization

    def to(self, device: torch.device) -> Scene:
        self.grid.to(device)
        self.points, self.sdf = self.points.to(device), self.sdf.to(device)
        return self


def grid_resolution(samples: SdfSamples, cfg: SdfkitConfig, mesh_unit: trimesh.Trimesh | None = None) -> int:
    """``grid.resolution``, or the automatic one from the scene's objects (needs the mesh), before
    ``grid.min_codes_per_object`` raises it."""
    return _resolution_and_objects(samples, cfg, mesh_unit)[0]


def _resolution_and_objects(samples: SdfSamples, cfg: SdfkitConfig,
                            mesh_unit: trimesh.Trimesh | None = None) -> tuple[int, int | None]:
    """(:func:`grid_resolution`, the typical objects it was sized for; None for ``grid.resolution``)."""
    if cfg.grid.resolution is not None:
        return cfg.grid.resolution, None
    if mesh_unit is None:
        try:
            mesh = load_mesh(samples.source)
        except SdfkitError:
            raise SdfkitError(f"cannot choose a grid resolution: the source mesh {samples.source} is not readable "
                              "(set grid.resolution)") from None
        mesh_unit = trimesh.Trimesh(samples.normalization.to_unit(mesh.vertices), mesh.faces, process=False)
    return auto_grid(mesh_unit, cfg.grid.cells_per_object, cfg.grid.max_resolution,
                     cells_per_cad_object=cfg.grid.cells_per_cad_object)


def raised_resolution(resolution: int, active: int, objects: int, min_codes_per_object: int,
                      max_resolution: int) -> int:
    """The resolution at which ``objects`` typical objects get about ``min_codes_per_object`` active tiles each,
    given ``active`` tiles at ``resolution``: unchanged where they have them, raised by the square root of the
    shortfall otherwise (the tiles on a surface grow with the square of the resolution), at most
    ``max_resolution``."""
    wanted = min_codes_per_object * objects
    if active >= wanted or resolution >= max_resolution:
        return resolution
    return min(max_resolution, max(resolution, round(resolution * math.sqrt(wanted / max(active, 1)))))


def grid_for_samples(samples: SdfSamples, cfg: SdfkitConfig, seed: int = 0,
                     mesh_unit: trimesh.Trimesh | None = None) -> LatentGrid:
    """The latent grid over a shape's normalised bounding box, with codes only near its surface.

    mesh_unit : the mesh in the unit frame, used to choose the resolution when
    ``grid.resolution`` is unset (read from ``samples.source`` when not given).
    """
    surface = np.asarray(samples.surface_points, dtype=np.float64)
    if cfg.grid.layout == "global":
        lo, hi = surface.min(axis=0), surface.max(axis=0)
        return GlobalGrid.around(lo, hi, cfg.model.latent_dim, cfg.grid.init_std, seed)

    def laid_out(resolution: int) -> tuple[GridSpec, np.ndarray, np.ndarray]:
        spec = GridSpec.around(surface.min(axis=0), surface.max(axis=0), resolution, cfg.grid.padding_cells)
        return spec, *tile_activity(spec, surface, samples.points, samples.sdf, cfg.grid.margin)

    resolution, objects = _resolution_and_objects(samples, cfg, mesh_unit)
    spec, active, side = laid_out(resolution)
    if objects is not None:
        finer = raised_resolution(resolution, int(active.sum()), objects, cfg.grid.min_codes_per_object,
                                  cfg.grid.max_resolution)
        if finer != resolution:
            spec, active, side = laid_out(finer)
    if not active.any():
        raise SdfkitError("no tile of the grid touches the surface")
    return LatentGrid(spec, active, side, cfg.model.latent_dim, cfg.grid.init_std, seed)


def make_scene(
    samples: SdfSamples,
    cfg: SdfkitConfig,
    name: str = "scene",
    seed: int = 0,
    grid: LatentGrid | None = None,
    mesh_unit: trimesh.Trimesh | None = None,
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


#: The golden ratio's fractional part: a stratum's offsets ``frac(u + t GOLDEN)`` over steps t = 0, 1, ... fill it
#: evenly at every t (the gaps between them take at most three sizes), where independent offsets bunch and leave holes.
GOLDEN = 0.6180339887498949


@dataclasses.dataclass
class BatchDraw:
    """How one scene's points of each step are drawn: ``near`` of them from the samples near the surface
    (``surface``, their indices), the rest from all samples (``everywhere``, their indices).

    Stratified (the default): each list is in the order of a space-filling curve, cut into as many equal strata as
    points are drawn from it, and each stratum gives one point a step. Every region then gets its share of each
    step's points to within one, where draws with replacement leave some tiles without a point in a step and give
    others several. Within a stratum the point moves from step to step by the golden ratio of its width from a
    random start, so a few consecutive steps (those the codes' running average spans) cover it evenly. Over its
    steps each sample is still drawn alike. From the same encoder codes 200 refinement steps ended 0.2-21% lower in
    Chamfer than independent draws on the five val meshes; 0.6-12% lower with a stratum's point drawn anew each
    step (BENCHMARKS.md, "Each step's points stratified along a curve").
    """

    surface: Tensor
    everywhere: Tensor
    near: int
    batch: int
    stratify: bool = True
    steps_drawn: int = 0
    starts: tuple[Tensor, Tensor] | None = None
    """Each stratum's random start in [0, 1) of its width, for ``surface`` and ``everywhere``: drawn at the first
    step."""

    @classmethod
    def of(cls, scene: Scene, batch: int, surface_fraction: float = 0.0, surface_band: float = 0.25,
           stratify: bool = True) -> BatchDraw:
        """``surface_fraction`` of ``batch`` from the samples within ``surface_band`` cells of the surface (by their
        exact distance), the rest from all of them (:attr:`sdfkit.config.FitConfig.surface_fraction`)."""
        points = scene.points
        everywhere = curve_order(points) if stratify else torch.arange(len(points), device=points.device)
        if not surface_fraction:  # every sample alike: no search for the near ones
            return cls(scene.sdf.new_empty(0, dtype=torch.long), everywhere, 0, batch, stratify)
        near_mask = scene.sdf.abs() < surface_band * scene.grid.spec.cell
        surface = everywhere[near_mask[everywhere]]  # a sub-sequence of the curve's order is in its order too
        near = int(round(surface_fraction * batch)) if len(surface) else 0
        return cls(surface, everywhere, near, batch, stratify)

    def sample(self, gen: torch.Generator) -> Tensor:
        """(batch,) sample indices of the next step: ``near`` from ``surface``, then the rest from ``everywhere``."""
        if not self.stratify:
            anywhere = self.everywhere[uniform_pick(len(self.everywhere), self.batch - self.near, gen)]
            near = self.surface[uniform_pick(len(self.surface), self.near, gen)] if self.near else None
        else:
            if self.starts is None:
                self.starts = (random_starts(self.near, gen), random_starts(self.batch - self.near, gen))
            shift = (self.steps_drawn * GOLDEN) % 1.0
            near_starts, anywhere_starts = self.starts
            anywhere = self.everywhere[stratified_pick(len(self.everywhere), anywhere_starts, shift)]
            near = self.surface[stratified_pick(len(self.surface), near_starts, shift)] if self.near else None
        self.steps_drawn += 1
        return anywhere if near is None else torch.cat([near, anywhere])


def uniform_pick(count: int, picks: int, gen: torch.Generator) -> Tensor:
    """(picks,) positions in ``range(count)``, independent and uniform (with replacement)."""
    return torch.randint(count, (picks,), generator=gen, device=gen.device)


def random_starts(picks: int, gen: torch.Generator) -> Tensor:
    """(picks,) float64 uniform in [0, 1): each stratum's start for :func:`stratified_pick`."""
    return torch.rand(picks, generator=gen, device=gen.device, dtype=torch.float64)


def stratified_pick(count: int, starts: Tensor, shift: float = 0.0) -> Tensor:
    """(picks,) positions in ``range(count)``, one in each of ``picks = len(starts)`` equal strata, in order.

    Stratum k is ``[k count / picks, (k + 1) count / picks)``; its position lies at the fraction
    ``frac(starts[k] + shift)`` of it. With ``picks >= count`` some positions repeat.
    starts : (picks,) float64 in [0, 1); uniform ``starts`` give every position alike.
    """
    picks = len(starts)
    strata = torch.arange(picks, device=starts.device, dtype=torch.float64)
    return ((strata + (starts + shift) % 1.0) * (count / picks)).long().clamp_(max=count - 1)


#: Bits per axis of :func:`curve_order`'s lattice: 1024 steps, far finer than a latent grid's tiles.
CURVE_BITS = 10


def curve_order(points: Tensor) -> Tensor:
    """(n,) indices that put ``points`` (n, 3) in Z-order (Morton order) over their bounding box.

    Consecutive points along the curve lie close together, so equal runs of the order are compact regions.
    """
    lo, hi = points.min(dim=0).values, points.max(dim=0).values
    steps = (1 << CURVE_BITS) - 1
    lattice = ((points - lo) / (hi - lo).clamp_min(1e-12) * steps).round().long().clamp_(0, steps)
    key = torch.zeros(len(points), dtype=torch.long, device=points.device)
    for bit in range(CURVE_BITS):
        for axis in range(3):
            key |= ((lattice[:, axis] >> bit) & 1) << (3 * bit + axis)
    return torch.argsort(key)
