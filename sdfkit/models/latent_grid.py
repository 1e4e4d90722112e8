"""A sparse grid of overlapping tiles, one latent code per tile.

Layout. The scene's box is divided into cubic cells of edge ``cell``; a tile
sits on every cell *vertex* and covers the 2 x 2 x 2 cells around it, so each
tile overlaps its neighbours by half and every point of the box lies in
exactly the 8 tiles at the corners of its cell. A point is evaluated in each
of those tiles' local coordinates ``u = (x - vertex) / cell`` (in [-1, 1]^3),
and the 8 results are blended with trilinear weights ``prod(1 - |u|)``. The
weights are continuous and vanish at a tile's border, so the blended field
is continuous everywhere.

Sparsity. Only tiles whose region can touch the surface get a code. Every
other tile lies wholly on one side of the surface; it contributes a constant:
its side's sign (known from the exact signs of preprocessing) times the
clamp band. Memory therefore grows with surface area, not volume.

Units. The decoder predicts distances in *cell units* (distance / cell), so
one decoder serves grids of any resolution; :func:`blend_tiles` returns cell
units and callers multiply by ``cell`` for unit-frame distances.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import KDTree
from torch import Tensor, nn

from data_prep.objects import CAD_MIN_PARTS, OBJECT_GAP, object_sizes
from sdfkit.errors import SdfkitError
from sdfkit.models.siren import ModulatedSiren

#: Padding of a global grid's box around the surface, as a fraction of the box's longest side.
GLOBAL_PADDING = 0.05

#: The 8 corner offsets of a cell, in the order used everywhere: (8, 3).
CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """Geometry of a tile grid: vertex (0, 0, 0) at ``origin``, ``cells`` cells of edge ``cell`` per axis."""

    origin: tuple[float, float, float]
    cell: float
    cells: tuple[int, int, int]

    @classmethod
    def around(cls, lo: np.ndarray, hi: np.ndarray, resolution: int, padding_cells: int = 1) -> GridSpec:
        """Cubic cells, ``resolution`` of them along the box's longest axis, plus padding on every side.

        lo, hi : (3,) corners of the box to cover (e.g. the mesh's normalised bounding box).
        """
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if resolution < 1:
            raise SdfkitError(f"grid resolution must be at least 1, got {resolution}")
        extent = np.maximum(hi - lo, 0.0)
        cell = float(extent.max()) / resolution
        if not cell > 0:
            raise SdfkitError("cannot build a tile grid over an empty box")
        cells = np.maximum(np.ceil(extent / cell - 1e-9).astype(np.int64), 1) + 2 * padding_cells
        origin = (lo + hi) / 2.0 - cells * cell / 2.0
        return cls(tuple(float(v) for v in origin), cell, tuple(int(c) for c in cells))  # type: ignore[arg-type]

    @property
    def vertex_shape(self) -> tuple[int, int, int]:
        return tuple(c + 1 for c in self.cells)  # type: ignore[return-value]

    @property
    def num_vertices(self) -> int:
        return int(np.prod(self.vertex_shape))

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(3,), (3,): the box the grid covers, in the unit frame."""
        lo = np.asarray(self.origin)
        return lo, lo + np.asarray(self.cells) * self.cell

    def vertex_positions(self) -> np.ndarray:
        """(V, 3) positions of all vertices, in flat (C-order) index order."""
        axes = [self.origin[a] + self.cell * np.arange(self.vertex_shape[a]) for a in range(3)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)

    def to_dict(self) -> dict:
        return {"origin": list(self.origin), "cell": self.cell, "cells": list(self.cells)}

    @classmethod
    def from_dict(cls, data: dict) -> GridSpec:
        try:
            origin, cells = tuple(float(v) for v in data["origin"]), tuple(int(c) for c in data["cells"])
            spec = cls(origin, float(data["cell"]), cells)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise SdfkitError("invalid tile grid description") from None
        if len(spec.origin) != 3 or len(spec.cells) != 3 or not spec.cell > 0 or min(spec.cells) < 1:
            raise SdfkitError("invalid tile grid description")
        return spec


def auto_resolution(mesh, cells_per_object: float, max_resolution: int, min_resolution: int = 8,
                    object_gap: float = OBJECT_GAP, cells_per_cad_object: float | None = None) -> int:
    """Grid resolution (cells along the longest axis) giving ``cells_per_object`` cells per object: the first of
    :func:`auto_grid`'s answers."""
    return auto_grid(mesh, cells_per_object, max_resolution, min_resolution, object_gap, cells_per_cad_object)[0]


def auto_grid(mesh, cells_per_object: float, max_resolution: int, min_resolution: int = 8,
              object_gap: float = OBJECT_GAP, cells_per_cad_object: float | None = None) -> tuple[int, int]:
    """(grid resolution, number of typical objects): cells along the longest axis giving ``cells_per_object``
    cells per object, and how many objects that cell was sized for.

    An object is a group of parts whose bounding boxes touch, overlap or come
    within ``object_gap`` of the mesh's diagonal (:mod:`data_prep.objects`), so a
    CAD model of many parts counts as one object and a scene of separated
    shapes as many. The objects whose diagonal is at least a quarter of the
    largest one's are typical; the cell is their median diagonal over
    ``cells_per_object``. A single shape gets about ``cells_per_object`` cells
    along its diagonal, and a scene of nine shapes as many per shape.

    cells_per_cad_object : used instead of ``cells_per_object`` when the typical
    object is made of at least :data:`~data_prep.objects.CAD_MIN_PARTS` parts (a
    CAD model, whose wings, tails and slats are thinner than a scanned shape's
    limbs); None: ``cells_per_object`` for every mesh.
    """
    diagonals, parts = object_sizes(mesh, object_gap)
    large = diagonals >= 0.25 * diagonals.max()
    cad = cells_per_cad_object is not None and float(np.median(parts[large])) >= CAD_MIN_PARTS
    cells = cells_per_cad_object if cad and cells_per_cad_object is not None else cells_per_object
    cell = float(np.median(diagonals[large])) / cells
    longest = float(np.max(np.ptp(np.asarray(mesh.vertices), axis=0)))
    return int(np.clip(round(longest / cell), min_resolution, max_resolution)), int(large.sum())


def tile_activity(
    spec: GridSpec,
    surface_points: np.ndarray,
    sample_points: np.ndarray,
    sample_sdf: np.ndarray,
    margin: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Which tiles need a code, and the side of the surface of those that do not.

    A tile needs a code when its vertex is within ``cell * (sqrt(3) + margin)``
    of a surface sample: its region (the cube of half-edge ``cell``) may then
    reach the surface. The side of every other tile is the sign of the exact
    SDF at the sample nearest its vertex; that sample is closer to the vertex
    than the surface is, so it lies on the same side.

    surface_points : (m, 3); sample_points : (n, 3) with exact sample_sdf : (n,).
    Returns active : (V,) bool and side : (V,) float32 in {-1, +1} (+1 for active tiles).
    """
    vertices = spec.vertex_positions()
    radius = spec.cell * (math.sqrt(3.0) + margin)
    surface_tree = KDTree(np.asarray(surface_points, dtype=np.float64))
    dist, _ = surface_tree.query(vertices, k=1, distance_upper_bound=radius, workers=-1)
    active = np.isfinite(dist)
    side = np.ones(len(vertices), dtype=np.float32)
    far = np.flatnonzero(~active)
    if len(far):
        _, nearest = KDTree(np.asarray(sample_points, dtype=np.float64)).query(vertices[far], k=1, workers=-1)
        side[far] = np.where(np.asarray(sample_sdf)[nearest] < 0, -1.0, 1.0)
    return active, side


def corner_coordinates(frac: Tensor) -> tuple[Tensor, Tensor]:
    """A point's coordinates in the 8 tiles at its cell's corners, and their trilinear weights.

    frac : (N, 3) the point's place in its cell, in [0, 1]^3. Returns ``local`` (N, 8, 3) in [-1, 1]
    and ``weight`` (N, 8), rows summing to 1; corners in :data:`CORNERS` order.
    """
    local = frac.unsqueeze(1) - torch.from_numpy(CORNERS).to(device=frac.device, dtype=frac.dtype)
    return local, (1.0 - local.abs()).prod(dim=-1)


class LatentGrid(nn.Module):
    """Sparse tile grid of one scene: codes for active tiles, a side for the rest.

    Buffers: ``lookup`` (V,) long, the code row of each vertex or -1;
    ``side`` (V,) float, -1 inside / +1 outside for tiles without a code.
    Parameter: ``codes`` (T, latent_dim), initialised from N(0, init_std^2).
    """

    layout = "local"
    lookup: Tensor
    side: Tensor
    _origin: Tensor
    _strides: Tensor
    _max_cell: Tensor
    _far_corner: Tensor
    _corners: Tensor

    def __init__(self, spec: GridSpec, active: np.ndarray, side: np.ndarray, latent_dim: int, init_std: float = 0.01,
                 seed: int = 0):
        super().__init__()
        if active.shape != (spec.num_vertices,) or side.shape != (spec.num_vertices,):
            raise SdfkitError("tile grid arrays do not match the grid's size")
        self.spec = spec
        lookup = np.full(spec.num_vertices, -1, dtype=np.int64)
        lookup[active] = np.arange(int(active.sum()))
        self.register_buffer("lookup", torch.from_numpy(lookup))
        self.register_buffer("side", torch.from_numpy(np.where(active, 1.0, side).astype(np.float32)))
        gen = torch.Generator().manual_seed(seed)
        self.codes = nn.Parameter(torch.randn(int(active.sum()), latent_dim, generator=gen) * init_std)
        self.register_buffer("_origin", torch.tensor(spec.origin, dtype=torch.float32))
        ny, nz = spec.vertex_shape[1], spec.vertex_shape[2]
        self.register_buffer("_strides", torch.tensor([ny * nz, nz, 1]))
        self.register_buffer("_max_cell", torch.tensor(spec.cells, dtype=torch.float32) - 1)
        # Built once: inside_box runs on every evaluation batch.
        self.register_buffer("_far_corner", torch.tensor(spec.bounds[1], dtype=torch.float32))
        self.register_buffer("_corners", torch.from_numpy(CORNERS))

    @property
    def num_codes(self) -> int:
        return int(self.codes.shape[0])

    def cells_of(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """The cell holding each point and the point's place in it.

        points : (N, 3) unit frame. Returns ``base`` (N, 3) long, the cell's lowest vertex, and
        ``frac`` (N, 3) in [0, 1]^3. Points outside the grid's box are clamped onto it.
        """
        t = (points - self._origin) / self.spec.cell
        base = torch.minimum(torch.clamp(torch.floor(t), min=0.0), self._max_cell)
        return base.long(), torch.clamp(t - base, 0.0, 1.0)

    def cell_tiles(self, base: Tensor) -> tuple[Tensor, Tensor]:
        """The 8 tiles at the corners of cells ``base`` (N, 3) long (from :meth:`cells_of`).

        Returns ``code`` (N, 8) long, the code row of each tile or -1, and ``side`` (N, 8),
        -1/+1 for tiles without a code; corners in :data:`CORNERS` order.
        """
        vertex = ((base.unsqueeze(1) + self._corners) * self._strides).sum(-1)
        return self.lookup[vertex], self.side[vertex]

    def corners(self, points: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The 8 tiles around each point.

        points : (N, 3) unit frame. Returns
        ``code`` (N, 8) long, the code row of each tile or -1;
        ``local`` (N, 8, 3), the point in each tile's coordinates;
        ``weight`` (N, 8), trilinear blending weights (rows sum to 1);
        ``side`` (N, 8), -1/+1 for tiles without a code.
        Points outside the grid's box are clamped onto it.
        """
        base, frac = self.cells_of(points)
        local, weight = corner_coordinates(frac)
        code, side = self.cell_tiles(base)
        return code, local, weight, side

    def inside_box(self, points: Tensor) -> Tensor:
        """(N,) bool: the point lies in the grid's box."""
        return ((points >= self._origin) & (points <= self._far_corner)).all(dim=-1)

    def state(self) -> dict:
        """Plain-data state (for checkpoints and fit outputs): spec, active tiles, sides, codes, layout."""
        return {
            "spec": self.spec.to_dict(),
            "active": (self.lookup >= 0).cpu(),
            "side": self.side.to(torch.int8).cpu(),
            "codes": self.codes.detach().cpu(),
            "layout": self.layout,
        }

    @staticmethod
    def from_state(state: dict, where: str = "file") -> LatentGrid:
        """Inverse of :meth:`state` (a :class:`GlobalGrid` for the global layout); one-line error for bad data."""
        try:
            spec = GridSpec.from_dict(state["spec"])
            active = state["active"].numpy().astype(bool)
            side = state["side"].numpy().astype(np.float32)
            codes = state["codes"]
            if (active.shape != (spec.num_vertices,) or side.shape != active.shape or codes.ndim != 2
                    or codes.shape[0] != int(active.sum())):
                raise ValueError
            if not torch.isfinite(codes).all():
                raise SdfkitError(f"{where} holds NaN or infinite latent codes")
        except SdfkitError:
            raise
        except (KeyError, AttributeError, TypeError, ValueError):
            raise SdfkitError(f"{where} holds an invalid latent grid") from None
        if state.get("layout", "local") == "global":
            grid: LatentGrid = GlobalGrid(spec, int(codes.shape[1]))
        else:
            grid = LatentGrid(spec, active, side, int(codes.shape[1]))
        with torch.no_grad():
            grid.codes.copy_(codes.float())
        return grid


class GlobalGrid(LatentGrid):
    """One code for a whole scene: a single cell over its box, evaluated once per point.

    The spec is one cubic cell; ``corners`` returns one "tile" per point (code
    0, weight 1) whose local coordinates are the box coordinates in [-1, 1]^3,
    so :func:`~sdfkit.models.latent_grid.blend_tiles`, the loss and the field
    work unchanged. Distances are in units of the box's side (``spec.cell``).
    """

    layout = "global"

    def __init__(self, spec: GridSpec, latent_dim: int, init_std: float = 0.01, seed: int = 0):
        if spec.cells != (1, 1, 1):
            raise SdfkitError("a global latent layout needs a grid of one cell")
        active = np.zeros(spec.num_vertices, dtype=bool)
        active[0] = True
        super().__init__(spec, active, np.ones(spec.num_vertices, dtype=np.float32), latent_dim, init_std, seed)

    @classmethod
    def around(cls, lo: np.ndarray, hi: np.ndarray, latent_dim: int, init_std: float = 0.01,
               seed: int = 0) -> GlobalGrid:
        """The cube around the box ``lo``..``hi`` (each (3,)), padded by :data:`GLOBAL_PADDING` of its longest side."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        pad = GLOBAL_PADDING * float(np.max(hi - lo))
        return cls(GridSpec.around(lo - pad, hi + pad, resolution=1, padding_cells=0), latent_dim, init_std, seed)

    def corners(self, points: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One tile per point: code (N, 1) zeros, local (N, 1, 3) in [-1, 1], weight (N, 1) ones, side (N, 1) ones."""
        t = torch.clamp((points - self._origin) / self.spec.cell, 0.0, 1.0)
        n = len(points)
        ones = torch.ones(n, 1, dtype=points.dtype, device=points.device)
        return torch.zeros(n, 1, dtype=torch.long, device=points.device), (2.0 * t - 1.0).unsqueeze(1), ones, ones



def blend_tiles(
    decoder: ModulatedSiren,
    code: Tensor,
    local: Tensor,
    weight: Tensor,
    side: Tensor,
    band: float,
    codes: Tensor | None = None,
    amps: Tensor | Sequence[Tensor] | None = None,
    gathered: bool = False,
) -> Tensor:
    """Blend the 8 tiles' predictions at each point, in cell units.

    code, local, weight, side : from :meth:`LatentGrid.corners`. Give either
    ``codes`` (T, D), the latent table that ``code`` indexes (training: the
    amplitudes are then computed once for each code the batch touches, not once
    per point), or ``amps`` (layers, T, hidden), amplitudes precomputed for the
    whole table (inference). ``gathered``: ``amps`` holds instead one row per
    entry of ``code[code >= 0]``, in that order, an (A, hidden) tensor per layer
    (:func:`sdfkit.optim.backward_in_chunks`, whose gradient is then per row, not
    per table).
    Returns (N,) blended signed distance in cell units (negative inside).
    """
    active = code >= 0
    flat_code = code[active]
    slot: Tensor | None
    if amps is None:
        if codes is None:
            raise ValueError("blend_tiles needs codes or amps")
        used, slot = torch.unique(flat_code, return_inverse=True)
        amps = decoder.amplitudes(codes.index_select(0, used))
    else:
        slot = None if gathered else flat_code
    values = (side * band).to(local.dtype)
    if flat_code.numel():
        pred = decoder.synthesis(local[active], amps, slot)
        values = values.masked_scatter(active, pred.to(values.dtype))
    return (values * weight).sum(dim=-1)
