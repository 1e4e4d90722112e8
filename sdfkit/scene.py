"""Scenes: one shape's SDF samples bound to its latent grid, and how that grid is laid out.

A :class:`Scene` is what training and fitting optimise; the grid's resolution
is given by the config or chosen from the sizes of the objects in the mesh.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import trimesh
from torch import Tensor

from data_prep.errors import SdfkitError
from data_prep.mesh import Normalization, load_mesh
from data_prep.sampling import SdfSamples
from sdfkit.config import SdfkitConfig
from sdfkit.models.latent_grid import GlobalGrid, GridSpec, LatentGrid, auto_resolution, tile_activity


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
    """``grid.resolution``, or the automatic one from the scene's objects (needs the mesh)."""
    if cfg.grid.resolution is not None:
        return cfg.grid.resolution
    if mesh_unit is None:
        try:
            mesh = load_mesh(samples.source)
        except SdfkitError:
            raise SdfkitError(f"cannot choose a grid resolution: the source mesh {samples.source} is not readable "
                              "(set grid.resolution)") from None
        mesh_unit = trimesh.Trimesh(samples.normalization.to_unit(mesh.vertices), mesh.faces, process=False)
    return auto_resolution(mesh_unit, cfg.grid.cells_per_object, cfg.grid.max_resolution,
                           cells_per_cad_object=cfg.grid.cells_per_cad_object)


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
    resolution = grid_resolution(samples, cfg, mesh_unit)
    spec = GridSpec.around(surface.min(axis=0), surface.max(axis=0), resolution, cfg.grid.padding_cells)
    active, side = tile_activity(spec, surface, samples.points, samples.sdf, cfg.grid.margin)
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


@dataclasses.dataclass
class BatchDraw:
    """How one scene's points of a step are drawn: ``near`` of them from the samples near the surface (``surface``,
    their indices), the rest from all ``count`` samples."""

    count: int
    surface: torch.Tensor
    near: int
    batch: int

    @classmethod
    def of(cls, scene: Scene, batch: int, surface_fraction: float = 0.0, surface_band: float = 0.25) -> BatchDraw:
        """``surface_fraction`` of ``batch`` from the samples within ``surface_band`` cells of the surface (by their
        exact distance), the rest from all of them (:attr:`sdfkit.config.FitConfig.surface_fraction`)."""
        if not surface_fraction:  # the default draw: every sample alike, no search for the near ones
            return cls(len(scene.points), scene.sdf.new_empty(0, dtype=torch.long), 0, batch)
        surface = torch.nonzero(scene.sdf.abs() < surface_band * scene.grid.spec.cell).squeeze(1)
        near = int(round(surface_fraction * batch)) if len(surface) else 0
        return cls(len(scene.points), surface, near, batch)

    def sample(self, gen: torch.Generator) -> torch.Tensor:
        """(batch,) sample indices."""
        device = self.surface.device
        anywhere = torch.randint(self.count, (self.batch - self.near,), generator=gen, device=device)
        if not self.near:
            return anywhere
        pick = torch.randint(len(self.surface), (self.near,), generator=gen, device=device)
        return torch.cat([self.surface[pick], anywhere])
