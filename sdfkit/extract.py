"""From a signed distance field to a mesh: batched grid evaluation and marching cubes.

Works on any field: a callable mapping (N, 3) float32 unit-frame points to (N,)
signed distances, **negative inside**, positive outside (a fitted model, or the
exact SDF of a mesh, :class:`data_prep.sdf.MeshSDF`).

Coarse-to-fine extraction evaluates the corners of coarse blocks first and
refines only the blocks whose corner values allow the iso level inside them, so
its cost grows with the surface's area rather than with the volume. For a
1-Lipschitz field (every exact SDF) it yields the same lattice values as the
dense grid on every cell the surface passes through, hence the same mesh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import mcubes
import numpy as np
import trimesh
from scipy.spatial import KDTree

from sdfkit.errors import SdfkitError
from sdfkit.progress import ProgressArg, stage_of

Field = Callable[[np.ndarray], np.ndarray]
#: Which boxes the field may cross its iso level in: (B, 3) lows, (B, 3) highs, unit frame -> (B,) bool.
#: A False box is never evaluated inside; the field must hold one sign there (e.g. a latent grid away from its
#: active tiles, :meth:`sdfkit.field.NeuralField.may_cross`).
Region = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: A box corner: three floats, as a sequence or a (3,) array.
Corner = Sequence[float] | np.ndarray
Bounds = tuple[Corner, Corner]

#: Default extraction box: the unit cube, which contains the unit sphere.
UNIT_BOUNDS: Bounds = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
#: Points per call into the field; bounds the field's working memory.
BATCH = 1 << 18
#: Edge of the coarsest block, in fine cells (rounded up to a power of two).
BLOCK = 16
#: A block is skipped when a corner is at least this many block diagonals
#: away from the iso level. An exact SDF is 1-Lipschitz, so 1 suffices; a learned
#: field is only approximately so, and where it is steeper than the factor allows a
#: skipped block may hide surface. Such surface meets the evaluated surface at the
#: block's border, so :func:`follow_surface` evaluates it there (no hole), and 1.0
#: is kept (1.5 evaluated 1.56x the points for the same mesh on a fitted penguin:
#: ``benchmarks/results/extract_points-penguin.md``).
LIPSCHITZ_FACTOR = 1.0
#: Blocks tested at once in coarse-to-fine extraction; bounds its bookkeeping memory.
BLOCK_CHUNK = 1 << 17
#: Lattice points per axis that every command accepts (``fit``, ``mesh``, ``slices``), checked by
#: :func:`check_resolution`: below 16 marching cubes keeps little of a shape, and a 2048^3 float32 lattice is
#: already 32 GiB.
RESOLUTION_RANGE = (16, 2048)


def _axes(resolution: int, bounds: Bounds) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Box corners (3,), (3,) and the lattice coordinates along each axis."""
    try:
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(3) for b in bounds)
    except (TypeError, ValueError):
        raise SdfkitError("extraction bounds must be two 3-vectors (lo, hi)") from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
        raise SdfkitError("extraction bounds must be finite with positive extent on every axis")
    return lo, hi, [np.linspace(lo[a], hi[a], resolution) for a in range(3)]


def check_resolution(resolution: object, option: str = "--resolution") -> int:
    """``resolution`` as an int when it is a whole number in :data:`RESOLUTION_RANGE`; else a one-line error naming
    ``option``."""
    lo, hi = RESOLUTION_RANGE
    try:
        value = int(resolution)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise SdfkitError(f"{option} must be a whole number between {lo} and {hi}, got {resolution!r}") from None
    if isinstance(resolution, bool) or value != resolution or not lo <= value <= hi:
        raise SdfkitError(f"{option} must be a whole number between {lo} and {hi}, got {resolution}")
    return value


def _check_resolution(resolution: int) -> None:
    # The library's own functions take any lattice (tests use small odd ones); commands check RESOLUTION_RANGE.
    if not 2 <= int(resolution) <= RESOLUTION_RANGE[1]:
        raise SdfkitError(f"resolution must be between 2 and {RESOLUTION_RANGE[1]}, got {resolution}")


def padded_bounds(lo: Corner, hi: Corner, resolution: int, cells: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The box [lo, hi] grown so that ``cells`` cells of a ``resolution``^3 lattice lie outside it on every side.

    Use it to extract a normalised bounding box (e.g. a scene's) without clipping
    the surface at the lattice border. Returns (3,), (3,) float64.
    """
    lo, hi = np.asarray(lo, dtype=np.float64).reshape(3), np.asarray(hi, dtype=np.float64).reshape(3)
    inner = int(resolution) - 1 - 2 * int(cells)
    if inner < 1:
        raise SdfkitError(f"resolution {resolution} is too small for {cells} padding cells")
    # Flat boxes still get a lattice of positive extent on every axis.
    extent = np.maximum(hi - lo, 1e-3 * max(float((hi - lo).max()), 1e-9))
    center = (lo + hi) / 2.0
    half = extent / 2.0 + cells * extent / inner
    return center - half, center + half


def evaluate_points(field: Field, points: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """The field at (n, 3) ``points``, ``batch_size`` points per call: (n,) float32.

    Accepts fields returning numpy arrays or torch tensors (on any device).
    Raises :class:`SdfkitError` when the field returns the wrong count or
    non-finite values.
    """
    if batch_size < 1:
        raise SdfkitError(f"batch size must be positive, got {batch_size}")
    out = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), batch_size):
        chunk = np.ascontiguousarray(points[start : start + batch_size], dtype=np.float32)
        values: Any = field(chunk)
        if hasattr(values, "detach"):  # a torch tensor, possibly on the GPU
            values = values.detach().float().cpu().numpy()
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if len(values) != len(chunk):
            raise SdfkitError(f"the field returned {len(values)} values for {len(chunk)} points")
        out[start : start + len(chunk)] = values
    if not np.isfinite(out).all():
        raise SdfkitError("the field returned NaN or infinite values")
    return out


def evaluate_grid(
    field: Field,
    resolution: int,
    bounds: Bounds = UNIT_BOUNDS,
    batch_size: int = BATCH,
    progress: ProgressArg = False,
) -> np.ndarray:
    """The field on a dense ``resolution``^3 lattice over ``bounds``.

    Lattice point (i, j, k) is ``lo + (i, j, k) * (hi - lo) / (resolution - 1)``.
    Points are generated a few x-slabs at a time (about ``batch_size`` points),
    so memory beyond the float32 grid itself stays bounded.

    Returns
    -------
    grid : (R, R, R) float32, index order x, y, z.
    """
    _check_resolution(resolution)
    _, _, axes = _axes(resolution, bounds)
    grid = np.empty((resolution,) * 3, dtype=np.float32)
    yz = np.stack(np.meshgrid(axes[1], axes[2], indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float32)
    slabs = max(1, batch_size // len(yz))
    with stage_of(progress, "extract", resolution, unit="x-slice") as stage:
        for i0 in range(0, resolution, slabs):
            xs = axes[0][i0 : i0 + slabs].astype(np.float32)
            pts = np.empty((len(xs), len(yz), 3), dtype=np.float32)
            pts[:, :, 0] = xs[:, None]
            pts[:, :, 1:] = yz[None]
            values = evaluate_points(field, pts.reshape(-1, 3), batch_size)
            grid[i0 : i0 + len(xs)] = values.reshape(len(xs), resolution, resolution)
            stage.update(advance=len(xs))
    return grid


def _fill_skipped(grid: np.ndarray, skipped: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
    """Give every lattice point still NaN the fill value of the skipped block holding it.

    ``skipped`` holds, per level, (block edge ``s``, block starts (B, 3), fill (B,)).
    A point at index i is looked up in block ``min(i // s, nb - 1)``; a point on a
    face shared with a refined block is either evaluated or covered by a finer
    skipped block, so each point ends up with a value.
    """
    resolution = grid.shape[0]
    last = resolution - 1
    tables = []
    for size, starts, fill in skipped:
        nb = -(-last // size)
        table = np.full((nb, nb, nb), np.nan, dtype=np.float32)
        table[tuple((starts // size).T)] = fill
        tables.append((table, np.minimum(np.arange(resolution) // size, nb - 1)))
    for i in range(resolution):
        slab = grid[i]
        for table, index in tables:
            missing = np.isnan(slab)
            if not missing.any():
                break
            np.copyto(slab, table[index[i]][np.ix_(index, index)], where=missing)


def _farthest(starts: np.ndarray, ends: np.ndarray, corners: np.ndarray, step: np.ndarray) -> np.ndarray:
    """(K, 8, 8) distance from each of a block's 8 corners (K, 8, 3) to the farthest point of each of its 8 children
    ((K, 8, 3) lattice starts and ends; index order child, corner), ``step`` (3,) apart."""
    gap = np.maximum(np.abs(corners[:, None, :, :] - starts[:, :, None, :]),
                     np.abs(corners[:, None, :, :] - ends[:, :, None, :]))
    return np.linalg.norm(gap * step, axis=3)


def evaluate_grid_coarse_to_fine(
    field: Field,
    resolution: int,
    bounds: Bounds = UNIT_BOUNDS,
    batch_size: int = BATCH,
    block: int = BLOCK,
    lipschitz_factor: float = LIPSCHITZ_FACTOR,
    level: float = 0.0,
    progress: ProgressArg = False,
    region: Region | None = None,
) -> tuple[np.ndarray, int]:
    """The field on a ``resolution``^3 lattice over ``bounds``, evaluated only near the iso level.

    Blocks of ``block`` cells are tested by their 8 corners: a block whose
    corners lie on one side of ``level`` and either one of which has |sdf -
    level| >= ``lipschitz_factor`` x the block's diagonal, or all of which have
    it >= ``lipschitz_factor`` x half the diagonal, holds no surface (a distance
    field changes no faster than distance; a surface point in the block would
    be within one diagonal of every corner and within half a diagonal of the
    nearest one), so it is not evaluated
    further; its lattice points get its corners' mean, which lies on the same
    side of ``level``, so marching cubes makes no surface there. Other blocks split in
    8, and each child is tested by its parent's corners before any of its own are
    evaluated: a corner whose |sdf - level| is at least ``lipschitz_factor`` x its
    distance to the child's farthest point rules the child out (and fills it with
    that corner's value). The rest are tested again, down to single cells, whose
    corners are the field's own values. For a 1-Lipschitz field with
    ``lipschitz_factor`` >= 1 every cell the surface crosses is fully evaluated,
    so marching cubes gives the same triangles as on :func:`evaluate_grid`; for a
    steeper field, :func:`follow_surface` then evaluates the surface that ran into
    skipped blocks.

    ``region`` (optional) also skips every block it rules out, whatever its
    corners say: the work is then bounded by the region's volume even for a
    field whose values change sign everywhere (a poorly fitted one).

    Returns
    -------
    grid : (R, R, R) float32, index order x, y, z.
    evaluations : int, the number of points the field was evaluated at.
    """
    _check_resolution(resolution)
    if not lipschitz_factor > 0:
        raise SdfkitError(f"lipschitz factor must be positive, got {lipschitz_factor}")
    lo, hi, _ = _axes(resolution, bounds)
    last = resolution - 1
    step = (hi - lo) / last
    grid = np.full((resolution,) * 3, np.nan, dtype=np.float32)
    flat_grid = grid.reshape(-1)
    evaluations = 0
    size = 1 << max(0, int(np.ceil(np.log2(max(min(block, last), 1)))))
    starts = np.arange(0, last, size)
    blocks = np.stack(np.meshgrid(starts, starts, starts, indexing="ij"), axis=-1).reshape(-1, 3).astype(np.int32)
    corner_offsets = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.int32)
    skipped: list[tuple[int, np.ndarray, np.ndarray]] = []
    # Blocks ruled out as children of the level above, by a corner of their parent.
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    levels = int(np.log2(size)) + 1
    # Levels are far from equal in time (the finest costs most): no remaining-time estimate.
    with stage_of(progress, "extract", levels, unit="level", estimate=False) as stage:
        while len(blocks):
            refined = []
            level_skipped, child_skipped = pending, []
            half = size // 2
            # Every whole block has the same distances from its corners to its children's farthest points; a
            # block the lattice's border clips is smaller, and these distances bound its own.
            farthest = _farthest(corner_offsets[None] * half, corner_offsets[None] * half + half,
                                 corner_offsets[None] * size, step)[0]
            # Chunks of blocks bound the (B, 8) corner bookkeeping near large surfaces.
            for chunk in range(0, len(blocks), BLOCK_CHUNK):
                starts_ = blocks[chunk : chunk + BLOCK_CHUNK]
                ends = np.minimum(starts_ + size, last)
                corners = np.where(corner_offsets[None] == 1, ends[:, None, :], starts_[:, None, :])  # (B, 8, 3)
                flat = np.ravel_multi_index(corners.reshape(-1, 3).T, grid.shape)
                todo = np.unique(flat[np.isnan(flat_grid[flat])])
                if len(todo):
                    idx = np.stack(np.unravel_index(todo, grid.shape), axis=-1)
                    flat_grid[todo] = evaluate_points(field, lo + idx * step, batch_size)
                    evaluations += len(todo)
                if size == 1:
                    continue
                offset = flat_grid[flat].reshape(-1, 8) - np.float32(level)
                diagonal = np.linalg.norm((ends - starts_) * step, axis=1)
                one_side = (offset > 0).all(axis=1) | (offset < 0).all(axis=1)
                # A zero inside the block is within one diagonal of every corner, so one far corner rules it
                # out; and within half a diagonal of its nearest corner, so corners all at least that far
                # (as in the clamped band of a learned field) rule it out too.
                reach = np.abs(offset)
                skip = one_side & ((reach.max(axis=1) >= lipschitz_factor * diagonal)
                                   | (reach.min(axis=1) >= lipschitz_factor * diagonal / 2))
                if region is not None:
                    skip |= ~np.asarray(region(lo + starts_ * step, lo + ends * step), dtype=bool)
                level_skipped.append((starts_[skip], offset[skip].mean(axis=1) + np.float32(level)))
                kept = ~skip
                children = starts_[kept][:, None, :] + corner_offsets[None] * half  # (K, 8, 3)
                present = (children < ends[kept][:, None, :]).all(axis=2)
                # A corner of the block whose |value| reaches past the child's farthest point rules the child out
                # (the block's own far-corner test, per child): its lattice points are never evaluated, down to
                # single cells, and the corner's value fills them.
                margin = np.abs(offset[kept])[:, None, :] - lipschitz_factor * farthest  # (K, child, corner)
                best = margin.argmax(axis=2)  # (K, child)
                out = present & (np.take_along_axis(margin, best[..., None], axis=2)[..., 0] >= 0)
                fill = np.take_along_axis(offset[kept], best, axis=1) + np.float32(level)
                child_skipped.append((children[out], fill[out]))
                refined.append(children[present & ~out])
            stage.update(advance=1, note=f"{resolution}^3 coarse to fine, {evaluations:,} points")
            if size == 1:
                break
            skipped.append((size, np.concatenate([b for b, _ in level_skipped]),
                            np.concatenate([f for _, f in level_skipped])))
            blocks, pending = np.concatenate(refined), child_skipped
            size //= 2
    evaluated = ~np.isnan(grid)
    del flat_grid
    cells: np.ndarray | None = None
    if pending:
        ruled_out = np.concatenate([b for b, _ in pending]), np.concatenate([f for _, f in pending])
        if size > 1:
            skipped.append((size, *ruled_out))
        else:
            # Single cells: their corners are filled directly, not through a lattice-sized lookup table.
            cells, cell_fill = ruled_out
    _fill_skipped(grid, skipped)
    if cells is not None:
        for corner in corner_offsets:
            index = tuple((cells + corner).T)
            missing = np.isnan(grid[index])
            grid[tuple(i[missing] for i in index)] = cell_fill[missing]
    evaluations += follow_surface(field, grid, evaluated, lo, step, level, batch_size)
    return grid, evaluations


def _corner_views(array: np.ndarray, x: slice) -> list[np.ndarray]:
    """The 8 corner values of the cells in x-range ``x`` of a (R, R, R) lattice: 8 views of shape (n, R-1, R-1)."""
    stop = x.stop + 1
    return [array[x.start + i : stop - 1 + i, j : array.shape[1] - 1 + j, k : array.shape[2] - 1 + k]
            for i in (0, 1) for j in (0, 1) for k in (0, 1)]


def _unfinished_cells(grid: np.ndarray, evaluated: np.ndarray, level: float, cells: np.ndarray | None = None,
                      slab: int = 16) -> np.ndarray:
    """(N, 3) cells whose corners lie on both sides of ``level`` while one of them was never evaluated.

    cells : (M, 3) candidate cells to test (None: every cell of the lattice, a slab of x at a time).
    """
    if cells is not None:
        corners = cells[:, None, :] + np.asarray([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        index = tuple(corners.reshape(-1, 3).T)
        below = (grid[index] < level).reshape(-1, 8)
        crossed = below.any(axis=1) & ~below.all(axis=1)
        return cells[crossed & ~evaluated[index].reshape(-1, 8).all(axis=1)]
    found = []
    last = grid.shape[0] - 1
    for x0 in range(0, last, slab):
        x = slice(x0, min(x0 + slab, last))
        below = [v < level for v in _corner_views(grid, x)]
        crossed = np.logical_or.reduce(below) & ~np.logical_and.reduce(below)
        done = np.logical_and.reduce(_corner_views(evaluated, x))
        hits = np.argwhere(crossed & ~done)
        hits[:, 0] += x0
        found.append(hits)
    return np.concatenate(found)


def _unique_points(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The distinct rows of (N, 3) lattice indices inside ``shape``, as (M, 3) int64."""
    flat = np.unique(np.ravel_multi_index(tuple(points.T), shape))
    return np.stack(np.unravel_index(flat, shape), axis=-1)


def follow_surface(field: Field, grid: np.ndarray, evaluated: np.ndarray, lo: np.ndarray, step: np.ndarray,
                   level: float = 0.0, batch_size: int = BATCH) -> int:
    """Evaluate the unevaluated corners of every cell the iso level crosses, until there are none.

    A cell whose corners straddle ``level`` while some were filled in from a skipped block is where
    a surface runs into that block (the field was steeper there than the skip test assumed). Its
    missing corners are evaluated, which may reveal further such cells one step deeper; the loop
    follows the surface until every cell it crosses has all 8 corners evaluated, so marching cubes
    sees no hole at a skipped block's border. ``grid`` and ``evaluated`` ((R, R, R) bool) are
    updated in place. Returns the number of points evaluated.
    """
    offsets = np.asarray([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    last = grid.shape[0] - 2
    cells = _unfinished_cells(grid, evaluated, level)
    count = 0
    # Points are deduplicated by flat index: np.unique over rows sorts, and took most of the time.
    while len(cells):
        corners = _unique_points((cells[:, None, :] + offsets).reshape(-1, 3), grid.shape)
        todo = corners[~evaluated[tuple(corners.T)]]
        grid[tuple(todo.T)] = evaluate_points(field, lo + todo * step, batch_size)
        evaluated[tuple(todo.T)] = True
        count += len(todo)
        # Only cells touching a newly evaluated point can have changed.
        touched = (todo[:, None, :] - offsets).reshape(-1, 3)
        touched = _unique_points(touched[((touched >= 0) & (touched <= last)).all(axis=1)], grid.shape)
        cells = _unfinished_cells(grid, evaluated, level, touched)
    return count


def marching_cubes(grid: np.ndarray, bounds: Bounds = UNIT_BOUNDS, level: float = 0.0) -> trimesh.Trimesh:
    """PyMCubes on a (R, R, R) lattice over ``bounds``; triangles face outwards (towards larger values).

    Raises :class:`SdfkitError` when the grid does not cross ``level``.
    """
    lo, hi, _ = _axes(grid.shape[0], bounds)
    if not (grid.min() < level < grid.max()):
        raise SdfkitError(f"the field has no surface at level {level:g} inside the extraction box")
    vertices, faces = mcubes.marching_cubes(grid, float(level))
    vertices = lo + vertices * ((hi - lo) / (np.asarray(grid.shape) - 1))
    # PyMCubes winds triangles to face decreasing values; with negative inside that is inwards.
    return trimesh.Trimesh(vertices, np.asarray(faces, dtype=np.int64)[:, ::-1], process=False)


def clean_components(mesh: trimesh.Trimesh, keep_largest: bool = False,
                     min_component_faces: int = 0) -> trimesh.Trimesh:
    """Keep only the largest connected component (by faces), or drop those of fewer than ``min_component_faces``."""
    if not keep_largest and min_component_faces <= 0:
        return mesh
    labels = component_labels(mesh)
    counts = np.bincount(labels)
    if keep_largest:
        keep = labels == np.argmax(counts)
    else:
        keep = counts[labels] >= min_component_faces
        if not keep.any():
            raise SdfkitError(f"every component has fewer than {min_component_faces} faces")
    return keep_faces(mesh, keep)


def component_labels(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F,) int: the connected component of each face (faces joined by a shared edge)."""
    return trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))


def keep_faces(mesh: trimesh.Trimesh, keep: np.ndarray) -> trimesh.Trimesh:
    """The mesh of the faces where ``keep`` (F,) bool holds, without unreferenced vertices (``mesh`` if all)."""
    if keep.all():
        return mesh
    out = cast(trimesh.Trimesh, mesh.submesh([np.flatnonzero(keep)], append=True, repair=False))  # append: one mesh
    out.remove_unreferenced_vertices()
    return out


def drop_unsupported_parts(mesh: trimesh.Trimesh, support: np.ndarray,
                           max_distance: float) -> tuple[trimesh.Trimesh, dict]:
    """Remove the connected components that no input point supports.

    A component is unsupported when every one of its vertices lies farther than ``max_distance`` from every
    point of ``support`` (M, 3), in the mesh's units: it reproduces nothing of the input. A fitted field makes
    such parts where few samples constrain it (a small closed blob some cells off the surface); a part of the
    input, however small, has vertices near its own samples and stays. The field itself is not changed.

    Returns the kept mesh and ``{"removed": parts, "faces": their faces, "max_distance": max_distance}``.
    """
    info = {"removed": 0, "faces": 0, "max_distance": float(max_distance)}
    if len(mesh.faces) == 0 or len(support) == 0:
        return mesh, info
    dist, _ = KDTree(np.asarray(support, dtype=np.float64)).query(np.asarray(mesh.vertices), k=1, workers=-1)
    if dist.max() <= max_distance:  # every vertex within reach: no part can be unsupported (the usual case)
        return mesh, info
    labels = component_labels(mesh)
    # A component's nearest approach: the least distance over the vertices of its faces.
    nearest = np.full(labels.max() + 1, np.inf)
    np.minimum.at(nearest, np.repeat(labels, 3), dist[np.asarray(mesh.faces).ravel()])
    unsupported = nearest > max_distance
    if not unsupported.any():
        return mesh, info
    if unsupported.all():  # nothing near the input at all: keep the field's surface rather than return nothing
        return mesh, info
    drop = unsupported[labels]
    info.update(removed=int(unsupported.sum()), faces=int(drop.sum()))
    return keep_faces(mesh, ~drop), info


def extract_mesh(
    field: Field,
    resolution: int = 256,
    level: float = 0.0,
    bounds: Bounds = UNIT_BOUNDS,
    batch_size: int = BATCH,
    coarse_to_fine: bool = True,
    lipschitz_factor: float = LIPSCHITZ_FACTOR,
    keep_largest: bool = False,
    min_component_faces: int = 0,
    smooth_iterations: int = 0,
    normalization=None,
    progress: ProgressArg = False,
    region: Region | None = None,
) -> trimesh.Trimesh:
    """Marching cubes of ``field`` on a ``resolution``^3 lattice over ``bounds`` (unit frame).

    Parameters
    ----------
    field : callable, (N, 3) float32 unit-frame points -> (N,) signed distances, negative inside.
    resolution : lattice points per axis.
    level : iso level, in the unit frame.
    bounds : ((3,), (3,)) lattice box in the unit frame; the unit cube by default.
    batch_size : points per call into the field.
    coarse_to_fine : evaluate only blocks that may hold the surface (see
        :func:`evaluate_grid_coarse_to_fine`); else the dense grid.
    lipschitz_factor : safety factor of the coarse-to-fine skip test.
    keep_largest, min_component_faces : component filtering, off by default.
    smooth_iterations : Taubin smoothing iterations (0: none).
    normalization : a :class:`data_prep.mesh.Normalization`; when given the mesh
        is returned in the input's own units, else in the unit frame.
    progress : show a progress bar (True), add a stage to a caller's :class:`~sdfkit.progress.Reporter`, or not.
    region : with ``coarse_to_fine``, the boxes where the field may cross ``level`` (:data:`Region`).

    Returns
    -------
    mesh : trimesh.Trimesh with outward-facing triangles.
    """
    if coarse_to_fine:
        grid, _ = evaluate_grid_coarse_to_fine(field, resolution, bounds, batch_size,
                                               lipschitz_factor=lipschitz_factor, level=level, progress=progress,
                                               region=region)
    else:
        grid = evaluate_grid(field, resolution, bounds, batch_size, progress=progress)
    mesh = marching_cubes(grid, bounds, level)
    del grid
    mesh.merge_vertices()
    # Cells cut exactly at lattice points give triangles whose corners merged into one vertex.
    faces = np.asarray(mesh.faces)
    mesh.update_faces((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2]))
    mesh.remove_unreferenced_vertices()
    mesh = clean_components(mesh, keep_largest, min_component_faces)
    if smooth_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, iterations=int(smooth_iterations))
    if normalization is not None:
        mesh.vertices = normalization.from_unit(np.asarray(mesh.vertices))
    return mesh
