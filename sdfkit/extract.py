"""From a signed distance field to a mesh: batched grid evaluation and marching cubes.

Works on any field: a callable mapping (N, 3) float32 unit-frame points to (N,)
signed distances, negative inside (a fitted model, or the exact SDF of a mesh).
Coarse-to-fine extraction evaluates a coarse lattice first and refines only the
blocks whose corner values allow the zero level inside them, so its cost grows
with the surface's area rather than the volume.
"""

from __future__ import annotations

from typing import Callable

import mcubes
import numpy as np
import trimesh

from sdfkit.errors import SdfkitError

Field = Callable[[np.ndarray], np.ndarray]

#: Points per call into the field.
BATCH = 1 << 18
#: Edge of the coarsest block, in fine cells (a power of two).
BLOCK = 16
#: Refine a block when a corner's |sdf| is below this many block diagonals. A
#: distance field is 1-Lipschitz, so 1 would do; learned fields only nearly are.
LIPSCHITZ_FACTOR = 1.5


def _axes(resolution: int, bounds) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    lo, hi = (np.asarray(b, dtype=np.float64).reshape(3) for b in bounds)
    if not np.all(hi > lo):
        raise SdfkitError("extraction bounds must have positive extent on every axis")
    return lo, hi, [np.linspace(lo[a], hi[a], resolution) for a in range(3)]


def _evaluate(field: Field, points: np.ndarray, batch_size: int) -> np.ndarray:
    out = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), batch_size):
        values = np.asarray(field(points[start : start + batch_size].astype(np.float32)), dtype=np.float32).reshape(-1)
        if len(values) != min(batch_size, len(points) - start):
            raise SdfkitError("the field returned the wrong number of values")
        out[start : start + len(values)] = values
    if not np.isfinite(out).all():
        raise SdfkitError("the field returned NaN or infinite values")
    return out


def evaluate_grid(field: Field, resolution: int, bounds=((-1, -1, -1), (1, 1, 1)), batch_size: int = BATCH) -> np.ndarray:
    """The field on a dense ``resolution``^3 lattice over ``bounds``: (R, R, R) float32, index order x, y, z.

    Evaluated one x-slab at a time, so memory beyond the grid itself stays bounded.
    """
    _, _, axes = _axes(resolution, bounds)
    grid = np.empty((resolution,) * 3, dtype=np.float32)
    yz = np.stack(np.meshgrid(axes[1], axes[2], indexing="ij"), axis=-1).reshape(-1, 2)
    for i, x in enumerate(axes[0]):
        pts = np.column_stack([np.full(len(yz), x), yz])
        grid[i] = _evaluate(field, pts, batch_size).reshape(resolution, resolution)
    return grid


def evaluate_grid_coarse_to_fine(
    field: Field,
    resolution: int,
    bounds=((-1, -1, -1), (1, 1, 1)),
    batch_size: int = BATCH,
    block: int = BLOCK,
    lipschitz_factor: float = LIPSCHITZ_FACTOR,
) -> tuple[np.ndarray, int]:
    """The field on a ``resolution``^3 lattice, evaluated only near the zero level.

    Blocks of ``block`` cells are tested by their 8 corners: a block whose
    corners all have |sdf| >= ``lipschitz_factor`` x its diagonal holds no
    surface (a distance field changes no faster than distance), so it is not
    evaluated further and its lattice points take its corners' mean, which has
    their common sign. Other blocks split in 8 and are tested again, down to
    single cells. Marching cubes then yields the same triangles as on the
    dense grid. Returns the grid (R, R, R) float32 (x, y, z index order) and
    the number of field evaluations.
    """
    lo, hi, _ = _axes(resolution, bounds)
    last = resolution - 1
    step = (hi - lo) / last
    grid = np.full((resolution,) * 3, np.nan, dtype=np.float32)
    evaluations = 0
    size = 1 << max(0, int(np.ceil(np.log2(max(block, 1)))))
    starts = np.arange(0, last, size)
    blocks = np.stack(np.meshgrid(starts, starts, starts, indexing="ij"), axis=-1).reshape(-1, 3)
    corner_offsets = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    while len(blocks):
        ends = np.minimum(blocks + size, last)
        corners = np.where(corner_offsets[None] == 1, ends[:, None, :], blocks[:, None, :])  # (B, 8, 3)
        flat = np.ravel_multi_index(corners.reshape(-1, 3).T, grid.shape)
        todo = np.unique(flat[np.isnan(grid.reshape(-1)[flat])])
        if len(todo):
            idx = np.stack(np.unravel_index(todo, grid.shape), axis=-1)
            grid.reshape(-1)[todo] = _evaluate(field, lo + idx * step, batch_size)
            evaluations += len(todo)
        values = grid.reshape(-1)[flat].reshape(-1, 8)
        if size == 1:
            break
        diagonal = np.linalg.norm((ends - blocks) * step, axis=1)
        refine = np.abs(values).min(axis=1) < lipschitz_factor * diagonal
        for (i0, j0, k0), (i1, j1, k1), fill in zip(blocks[~refine], ends[~refine], values[~refine].mean(axis=1)):
            sub = grid[i0 : i1 + 1, j0 : j1 + 1, k0 : k1 + 1]
            np.copyto(sub, fill, where=np.isnan(sub))
        half = size // 2
        children = (blocks[refine][:, None, :] + corner_offsets[None] * half).reshape(-1, 3)
        parent_ends = np.repeat(ends[refine], 8, axis=0)
        blocks = children[(children < parent_ends).all(axis=1)]
        size = half
    return grid, evaluations


def marching_cubes(grid: np.ndarray, bounds, level: float = 0.0) -> trimesh.Trimesh:
    """PyMCubes on a lattice over ``bounds``; triangles face outwards (towards larger values)."""
    lo, hi, _ = _axes(grid.shape[0], bounds)
    if not (grid.min() < level < grid.max()):
        raise SdfkitError(f"the field has no surface at level {level} inside the extraction box")
    vertices, faces = mcubes.marching_cubes(grid, float(level))
    vertices = lo + vertices * (hi - lo) / (np.asarray(grid.shape) - 1)
    # PyMCubes winds triangles towards decreasing values; negative-inside fields need the reverse.
    return trimesh.Trimesh(vertices, faces[:, ::-1], process=False)


def clean_components(mesh: trimesh.Trimesh, keep_largest: bool = False, min_component_faces: int = 0) -> trimesh.Trimesh:
    """Keep the largest connected component, or drop components with fewer faces than ``min_component_faces``."""
    if not keep_largest and min_component_faces <= 0:
        return mesh
    parts = mesh.split(only_watertight=False)
    if len(parts) <= 1:
        return mesh
    if keep_largest:
        return max(parts, key=lambda p: len(p.faces))
    kept = [p for p in parts if len(p.faces) >= min_component_faces]
    if not kept:
        raise SdfkitError(f"every component has fewer than {min_component_faces} faces")
    return trimesh.util.concatenate(kept)


def extract_mesh(
    field: Field,
    resolution: int = 256,
    level: float = 0.0,
    bounds=((-1, -1, -1), (1, 1, 1)),
    batch_size: int = BATCH,
    coarse_to_fine: bool = True,
    lipschitz_factor: float = LIPSCHITZ_FACTOR,
    keep_largest: bool = False,
    min_component_faces: int = 0,
    smooth_iterations: int = 0,
    normalization=None,
) -> trimesh.Trimesh:
    """Marching cubes of ``field`` at ``resolution``^3 over ``bounds`` (unit frame).

    Returns the mesh in the input's own units when ``normalization`` (a
    :class:`data_prep.mesh.Normalization`) is given, else in the unit frame.
    """
    if not 8 <= resolution <= 2048:
        raise SdfkitError(f"resolution must be between 8 and 2048, got {resolution}")
    if coarse_to_fine:
        grid, _ = evaluate_grid_coarse_to_fine(field, resolution, bounds, batch_size, lipschitz_factor=lipschitz_factor)
    else:
        grid = evaluate_grid(field, resolution, bounds, batch_size)
    mesh = marching_cubes(grid, bounds, level)
    del grid
    mesh.merge_vertices()
    mesh = clean_components(mesh, keep_largest, min_component_faces)
    if smooth_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, iterations=smooth_iterations)
    if normalization is not None:
        mesh.vertices = normalization.from_unit(mesh.vertices)
    return mesh
