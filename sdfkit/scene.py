"""Scenes: one shape's SDF samples bound to its latent grid, and how that grid is laid out.

A :class:`Scene` is what training and fitting optimise; the grid's resolution
is given by the config or chosen from the sizes of the objects in the mesh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

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
    beyond: Tensor | None = None
    """(m,) long: the samples beyond the uniform samples' volume (:func:`add_beyond_samples`); None: not known."""

    def to(self, device: torch.device) -> Scene:
        self.grid.to(device)
        self.points, self.sdf = self.points.to(device), self.sdf.to(device)
        if self.beyond is not None:
            self.beyond = self.beyond.to(device)
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


def uncovered_points(grid: LatentGrid, density: float, covered: Callable[[np.ndarray], np.ndarray],
                     seed: int = 0) -> np.ndarray:
    """Uniform points, ``density`` per unit volume, over the cells an active tile reaches, where ``covered``
    ((n, 3) -> (n,) bool) is False: (q, 3) float32, unit frame.

    The uniform samples fill a ball or a padded box, but the active tiles reach a few cells past the surface, so
    past the shape's outermost points their regions hold only the sparse tail of the near-surface samples. Left
    unsampled there, a tile's code is free to bend the field below zero and the extraction finds a stray part;
    this fills that shell as densely as the rest of the volume is sampled.
    """
    if isinstance(grid, GlobalGrid):  # one box over the shape: the uniform samples cover it
        return np.zeros((0, 3), dtype=np.float32)
    spec = grid.spec
    nx, ny, nz = spec.vertex_shape
    vertex = np.flatnonzero(grid.lookup.cpu().numpy() >= 0)
    ijk = np.stack([vertex // (ny * nz), (vertex // nz) % ny, vertex % nz], axis=1)
    # A tile at vertex v reaches the 8 cells with v as a corner: v - 1 .. v along each axis.
    offsets = np.array([[a, b, c] for a in (-1, 0) for b in (-1, 0) for c in (-1, 0)])
    cells = (ijk[:, None, :] + offsets[None]).reshape(-1, 3)
    cells = cells[np.all((cells >= 0) & (cells < np.asarray(spec.cells)), axis=1)]
    cells = np.unique(cells, axis=0)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(density * spec.cell**3, size=len(cells))
    corner = np.repeat(cells, counts, axis=0).astype(np.float64)
    points = np.asarray(spec.origin) + (corner + rng.random(corner.shape)) * spec.cell
    return points[~covered(points)].astype(np.float32)


def add_beyond_samples(scene: Scene, density: float, covered: Callable[[np.ndarray], np.ndarray],
                       sdf: Callable[[np.ndarray], np.ndarray], seed: int = 0) -> Scene:
    """``scene`` with :func:`uncovered_points` and their signed distances (``sdf``: (q, 3) unit-frame points ->
    (q,), negative inside) appended to its samples, and ``beyond`` set to every sample where ``covered`` is False
    (the new ones and the near-surface samples that lie there)."""
    extra = uncovered_points(scene.grid, density, covered, seed)
    points = torch.cat([scene.points, torch.from_numpy(extra).to(scene.points.device)])
    values = torch.cat([scene.sdf, torch.as_tensor(sdf(extra), dtype=torch.float32).to(scene.sdf.device)])
    beyond = torch.from_numpy(np.flatnonzero(~covered(points.cpu().numpy()))).to(points.device)
    return dataclasses.replace(scene, points=points, sdf=values, beyond=beyond)


@dataclasses.dataclass
class BatchDraw:
    """How one scene's points of a step are drawn: ``near`` of them from the samples near the surface (``surface``,
    their indices), ``far`` from the samples beyond the uniform samples' volume (``beyond``), the rest from all
    ``count`` samples."""

    count: int
    surface: torch.Tensor
    near: int
    batch: int
    beyond: torch.Tensor | None = None
    far: int = 0

    @classmethod
    def of(cls, scene: Scene, batch: int, surface_fraction: float = 0.0, surface_band: float = 0.25,
           beyond_fraction: float = 0.0) -> BatchDraw:
        """``surface_fraction`` of ``batch`` from the samples within ``surface_band`` cells of the surface (by their
        exact distance), ``beyond_fraction`` from ``scene.beyond``, the rest from all of them
        (:attr:`sdfkit.config.FitConfig.surface_fraction`, :attr:`~sdfkit.config.FitConfig.beyond_fraction`)."""
        beyond = scene.beyond if scene.beyond is not None and len(scene.beyond) else None
        far = int(round(beyond_fraction * batch)) if beyond is not None else 0
        if not surface_fraction:  # every other sample alike, no search for the near ones
            return cls(len(scene.points), scene.sdf.new_empty(0, dtype=torch.long), 0, batch, beyond, far)
        surface = torch.nonzero(scene.sdf.abs() < surface_band * scene.grid.spec.cell).squeeze(1)
        near = int(round(surface_fraction * batch)) if len(surface) else 0
        return cls(len(scene.points), surface, near, batch, beyond, min(far, batch - near))

    def sample(self, gen: torch.Generator) -> torch.Tensor:
        """(batch,) sample indices: the near ones, the ones from everywhere, then the far ones."""
        device = self.surface.device
        anywhere = torch.randint(self.count, (self.batch - self.near - self.far,), generator=gen, device=device)
        parts = [anywhere]
        if self.near:  # drawn second: with no far share the batches repeat those of the recorded runs
            parts.insert(0, self.surface[torch.randint(len(self.surface), (self.near,), generator=gen, device=device)])
        if self.far and self.beyond is not None:
            parts.append(self.beyond[torch.randint(len(self.beyond), (self.far,), generator=gen, device=device)])
        return torch.cat(parts) if len(parts) > 1 else anywhere
