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
