"""Extraction: coarse-to-fine against dense, orientation, the oracle's quality, memory-safe batching."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from data_prep.mesh import load_mesh, normalize_mesh
from data_prep.sdf import MeshSDF
from sdfkit.errors import SdfkitError
from sdfkit.extract import (
    _farthest,
    drop_unsupported_parts,
    evaluate_grid,
    evaluate_grid_coarse_to_fine,
    evaluate_points,
    extract_mesh,
    follow_surface,
    marching_cubes,
    padded_bounds,
)
from sdfkit.metrics import evaluate_meshes


def sphere_field(points: np.ndarray) -> np.ndarray:
    return (np.linalg.norm(points, axis=1) - 0.6).astype(np.float32)


def test_dense_grid_matches_pointwise_evaluation():
    grid = evaluate_grid(sphere_field, 9, ((-1, -1, -1), (1, 1, 1)))
    axis = np.linspace(-1, 1, 9)
    for i, j, k in [(0, 0, 0), (4, 4, 4), (8, 3, 1), (2, 7, 5)]:
        assert grid[i, j, k] == pytest.approx(np.sqrt(axis[i] ** 2 + axis[j] ** 2 + axis[k] ** 2) - 0.6, abs=1e-6)


def crossed_corners(grid: np.ndarray, level: float = 0.0) -> np.ndarray:
    """(R, R, R) bool: the corners of every cell whose 8 corners lie on both sides of ``level``, by a loop over cells."""
    out = np.zeros(grid.shape, dtype=bool)
    below = grid < level
    n = grid.shape[0] - 1
    for i in range(n):
        for j in range(n):
            for k in range(n):
                block = below[i : i + 2, j : j + 2, k : k + 2]
                if block.any() and not block.all():
                    out[i : i + 2, j : j + 2, k : k + 2] = True
    return out


@pytest.mark.parametrize(("name", "resolution"), [("val/penguin.obj", 65), ("train/goathead.obj", 65),
                                                  ("val/penguin.obj", 50)])  # 50: the border clips blocks
def test_coarse_to_fine_gives_the_dense_mesh_on_real_shapes(shared_meshes, name, resolution):
    unit, _ = normalize_mesh(load_mesh(shared_meshes / name))
    field = MeshSDF(unit)
    bounds = (unit.bounds[0] - 0.05, unit.bounds[1] + 0.05)
    dense = evaluate_grid(field, resolution, bounds)
    sparse, evaluations = evaluate_grid_coarse_to_fine(field, resolution, bounds)
    # The fewest points any extraction evaluates are the corners of the crossed cells; testing each child of a
    # block by its parent's corners keeps within 1.6 times that (testing only whole blocks evaluated 2.2 times).
    assert evaluations < 1.6 * crossed_corners(dense).sum()
    a, b = marching_cubes(dense, bounds), marching_cubes(sparse, bounds)
    assert a.vertices.shape == b.vertices.shape
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)
    np.testing.assert_array_equal(a.faces, b.faces)
    # Every corner of every cell the dense surface crosses holds the dense value (what marching cubes reads).
    needed = crossed_corners(dense)
    np.testing.assert_allclose(sparse[needed], dense[needed], atol=1e-6)
    # Skipped regions are filled with values of the right sign, so marching cubes sees the same inside/outside.
    assert not np.isnan(sparse).any()
    np.testing.assert_array_equal(np.sign(sparse[dense != 0]), np.sign(dense[dense != 0]))


def test_farthest_distances_match_a_loop_over_child_corners():
    """The farthest point of a box from a point is one of the box's 8 corners."""
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 5, (3, 8, 3))
    ends = starts + rng.integers(1, 4, (3, 8, 3))
    corners = rng.integers(0, 9, (3, 8, 3))
    step = np.array([0.5, 1.0, 2.0])
    got = _farthest(starts, ends, corners, step)
    for k in range(3):
        for child in range(8):
            box = [np.array([(ends if i else starts)[k, child, a] for a, i in enumerate(bits)])
                   for bits in np.ndindex(2, 2, 2)]
            for corner in range(8):
                want = max(np.linalg.norm((b - corners[k, corner]) * step) for b in box)
                assert got[k, child, corner] == pytest.approx(want)


def test_surface_in_blocks_a_steep_field_let_the_skip_test_drop_is_followed():
    """A field twice as steep as a distance makes the skip test drop a block that a sphere's cap pokes into;
    following the surface from the cells found evaluates it, so the mesh is still the dense one (without
    following, the cap is a hole: 3,432 faces against 3,464)."""
    centre = np.array([0.02, 0.25, 0.25])  # the cap crosses the x = 0 face of the coarsest blocks
    steep = lambda p: 2.0 * (np.linalg.norm(p - centre, axis=1) - 0.3)  # noqa: E731  2-Lipschitz, negative inside
    dense = evaluate_grid(steep, 65)
    sparse, evaluations = evaluate_grid_coarse_to_fine(steep, 65)
    assert evaluations < 0.5 * 65**3
    needed = crossed_corners(dense)
    np.testing.assert_allclose(sparse[needed], dense[needed], atol=1e-6)
    a, b = marching_cubes(dense), marching_cubes(sparse)
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)


def test_follow_surface_evaluates_exactly_the_missing_corners_of_crossed_cells():
    grid = evaluate_grid(sphere_field, 17)
    truth = grid.copy()
    evaluated = np.ones(grid.shape, dtype=bool)
    hidden = np.zeros(grid.shape, dtype=bool)
    hidden[8:, 8:, 8:] = True  # an octant whose values were filled in with the wrong magnitude but the right sign
    grid[hidden] = np.sign(grid[hidden]) * 5.0
    evaluated[hidden] = False
    lo, step = np.full(3, -1.0), np.full(3, 2.0 / 16)
    count = follow_surface(sphere_field, grid, evaluated, lo, step)
    needed = crossed_corners(truth)
    np.testing.assert_allclose(grid[needed], truth[needed], atol=1e-6)
    assert count == int((needed & hidden).sum())


def test_triangles_face_outwards():
    mesh = extract_mesh(sphere_field, resolution=48)
    assert mesh.volume > 0
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.02)


@pytest.mark.parametrize("name", ["sphere", "torus"])
def test_oracle_extraction_quality(shared_meshes, name):
    gt = load_mesh(shared_meshes / "val" / f"{name}.obj")
    unit, norm = normalize_mesh(gt)
    pad = 0.02
    mesh = extract_mesh(MeshSDF(unit), resolution=128, bounds=(unit.bounds[0] - pad, unit.bounds[1] + pad), normalization=norm)
    metrics = evaluate_meshes(mesh, gt, num_surface=10_000, num_volume=100_000)
    assert metrics["chamfer"] < 1e-6
    assert metrics["iou"] > 0.995
    np.testing.assert_allclose(mesh.bounds, gt.bounds, atol=0.02 * norm.scale)  # in the input's own units


def test_options_and_errors():
    two = lambda p: np.minimum(np.linalg.norm(p - [0.5, 0, 0], axis=1) - 0.3, np.linalg.norm(p + [0.5, 0, 0], axis=1) - 0.1).astype(np.float32)
    both = extract_mesh(two, resolution=64)
    largest = extract_mesh(two, resolution=64, keep_largest=True)
    assert len(both.split(only_watertight=False)) == 2 and len(largest.split(only_watertight=False)) == 1
    assert largest.bounds[0][0] > 0.1
    with pytest.raises(SdfkitError, match="no surface"):
        extract_mesh(lambda p: np.ones(len(p), np.float32), resolution=16)
    with pytest.raises(SdfkitError, match="NaN"):
        extract_mesh(lambda p: np.full(len(p), np.nan, np.float32), resolution=16)
    with pytest.raises(SdfkitError, match="resolution"):
        extract_mesh(sphere_field, resolution=1)


def test_smoothing_is_taubin_and_flattens_bumps_without_shrinking():
    """A sphere with bumps a lattice step high: smoothing keeps the topology and the volume, halves the bending
    between neighbouring faces, and is trimesh's Taubin filter applied to the unsmoothed mesh."""
    def bumpy(p):
        bumps = 0.01 * np.sin(60 * p[:, 0]) * np.sin(60 * p[:, 1]) * np.sin(60 * p[:, 2])
        return (np.linalg.norm(p, axis=1) - 0.6 + bumps).astype(np.float32)

    raw = extract_mesh(bumpy, resolution=64)
    smooth = extract_mesh(bumpy, resolution=64, smooth_iterations=5)
    reference = raw.copy()
    trimesh.smoothing.filter_taubin(reference, iterations=5)
    np.testing.assert_array_equal(smooth.faces, raw.faces)
    np.testing.assert_allclose(smooth.vertices, reference.vertices, atol=1e-9)
    assert smooth.face_adjacency_angles.mean() < 0.5 * raw.face_adjacency_angles.mean()
    assert abs(smooth.volume / raw.volume - 1) < 0.01  # Taubin's point: no shrinking


def test_batches_bound_the_calls():
    sizes = []

    def field(p):
        sizes.append(len(p))
        return sphere_field(p)

    extract_mesh(field, resolution=40, batch_size=1000, coarse_to_fine=False)
    assert max(sizes) <= 1000


# --- references and further properties -------------------------------------------------------------

#: Float tolerance for lattice values and vertex positions computed by two paths.
VALUE_ATOL = 1e-6


def naive_grid(field, resolution: int, bounds) -> np.ndarray:
    """One point at a time: the obviously-correct lattice."""
    lo, hi = np.asarray(bounds[0], float), np.asarray(bounds[1], float)
    out = np.empty((resolution,) * 3, np.float32)
    for i in range(resolution):
        for j in range(resolution):
            for k in range(resolution):
                p = lo + (hi - lo) * np.array([i, j, k]) / (resolution - 1)
                out[i, j, k] = field(p[None].astype(np.float32))[0]
    return out


@pytest.mark.parametrize("batch_size", [7, 100, 10_000])
def test_dense_grid_matches_a_naive_loop_for_any_batching(batch_size):
    bounds = ((-1.0, -0.5, -0.8), (0.9, 1.0, 0.7))  # not a cube: each axis has its own step
    grid = evaluate_grid(sphere_field, 11, bounds, batch_size=batch_size)
    np.testing.assert_allclose(grid, naive_grid(sphere_field, 11, bounds), atol=VALUE_ATOL)


def test_coarse_to_fine_at_a_nonzero_level_matches_dense():
    level = 0.1
    dense = marching_cubes(evaluate_grid(sphere_field, 65), level=level)
    sparse_grid, _ = evaluate_grid_coarse_to_fine(sphere_field, 65, level=level)
    sparse = marching_cubes(sparse_grid, level=level)
    np.testing.assert_allclose(sparse.vertices, dense.vertices, atol=VALUE_ATOL)
    radius = np.linalg.norm(extract_mesh(sphere_field, 65, level=level).vertices, axis=1)
    np.testing.assert_allclose(radius, 0.7, atol=0.01)


def test_clamped_fields_skip_blocks_whose_corners_are_all_far():
    """A field clamped at a few lattice steps (a learned field's band) is skipped wherever it saturates.

    No single corner of a 2-cell block is a whole diagonal (times the margin)
    from the surface, so only the half-diagonal test can skip such blocks; it
    must still give the dense mesh.
    """
    resolution = 97
    step = 2.0 / (resolution - 1)
    clamped = lambda p: np.clip(sphere_field(p), -4 * step, 4 * step)
    dense = evaluate_grid(clamped, resolution)
    sparse, evaluations = evaluate_grid_coarse_to_fine(clamped, resolution)
    assert evaluations < 0.3 * resolution**3
    a, b = marching_cubes(dense), marching_cubes(sparse)
    np.testing.assert_allclose(b.vertices, a.vertices, atol=VALUE_ATOL)
    np.testing.assert_array_equal(b.faces, a.faces)


def test_lipschitz_factor_covers_steeper_fields():
    """A field 3x steeper than a distance needs a factor >= 3 to reproduce the dense mesh."""
    steep = lambda p: 3.0 * sphere_field(p)
    dense = marching_cubes(evaluate_grid(steep, 65))
    grid, _ = evaluate_grid_coarse_to_fine(steep, 65, lipschitz_factor=3.0)
    np.testing.assert_allclose(marching_cubes(grid).vertices, dense.vertices, atol=VALUE_ATOL)
    with pytest.raises(SdfkitError, match="lipschitz"):
        evaluate_grid_coarse_to_fine(steep, 65, lipschitz_factor=0.0)


def test_padded_bounds_leave_whole_cells_outside_the_box():
    lo, hi = np.array([-0.2, -1.0, -0.5]), np.array([0.2, 1.0, 0.4])
    a, b = padded_bounds(lo, hi, 101, cells=2)
    step = (b - a) / 100
    np.testing.assert_allclose(a + 2 * step, lo, atol=1e-12)
    np.testing.assert_allclose(b - 2 * step, hi, atol=1e-12)
    with pytest.raises(SdfkitError, match="too small"):
        padded_bounds(lo, hi, 5, cells=2)


def test_input_units_and_torch_fields():
    import torch

    from data_prep.mesh import Normalization

    norm = Normalization(center=np.array([10.0, -2.0, 3.0]), scale=4.0)
    unit = extract_mesh(sphere_field, 48)
    # A torch-returning field (as a model on any device would be) gives the same mesh.
    mapped = extract_mesh(lambda p: torch.from_numpy(sphere_field(p)), 48, normalization=norm, progress=True)
    np.testing.assert_allclose(mapped.vertices, unit.vertices * 4.0 + [10.0, -2.0, 3.0], atol=1e-5)
    with pytest.raises(SdfkitError, match="values for"):
        extract_mesh(lambda p: sphere_field(p)[:-1], 16)


def test_min_component_faces_drops_floaters_only():
    two = lambda p: np.minimum(np.linalg.norm(p - [0.5, 0, 0], axis=1) - 0.3,
                               np.linalg.norm(p + [0.5, 0, 0], axis=1) - 0.08).astype(np.float32)
    both = extract_mesh(two, resolution=64)
    sizes = sorted(len(part.faces) for part in both.split(only_watertight=False))
    kept = extract_mesh(two, resolution=64, min_component_faces=sizes[0] + 1)
    assert len(kept.faces) == sizes[1] and kept.bounds[0][0] > 0.1
    with pytest.raises(SdfkitError, match="fewer than"):
        extract_mesh(two, resolution=64, min_component_faces=sizes[1] + 1)


def unsupported_reference(mesh: trimesh.Trimesh, support: np.ndarray, max_distance: float) -> list[int]:
    """Slow reference: the face counts of the parts (trimesh's split) some vertex of which is within reach."""
    kept = []
    for part in mesh.split(only_watertight=False):
        gaps = np.linalg.norm(part.vertices[:, None, :] - support[None, :, :], axis=-1)
        if gaps.min() <= max_distance:
            kept.append(len(part.faces))
    return sorted(kept)


def test_drop_unsupported_parts_keeps_what_the_input_reaches():
    shape = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    small = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    small.apply_translation([0.0, 0.0, -1.5])  # a real part of the input, however small
    blob = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    blob.apply_translation([0.0, 1.2, 0.0])  # 0.15 from the nearest input point: nothing supports it
    recon = trimesh.util.concatenate([shape, small, blob])
    rng = np.random.default_rng(0)
    support = np.concatenate([shape.sample(2000, seed=1), small.vertices[:3] + rng.normal(0, 0.01, (3, 3))])

    kept, info = drop_unsupported_parts(recon, support, max_distance=0.1)

    assert sorted(len(p.faces) for p in kept.split(only_watertight=False)) == unsupported_reference(
        recon, support, 0.1) == sorted([len(shape.faces), len(small.faces)])
    assert info == {"removed": 1, "faces": len(blob.faces), "max_distance": 0.1}
    assert kept.bounds[1][1] < 1.01  # the blob above the sphere is gone
    # Within reach, the blob stays; with nothing within reach of any part, the mesh is returned as it is.
    near, info = drop_unsupported_parts(recon, support, max_distance=0.2)
    assert len(near.faces) == len(recon.faces) and info["removed"] == 0
    alone, info = drop_unsupported_parts(recon, support + 10.0, max_distance=0.1)
    assert alone is recon and info["removed"] == 0
    whole, info = drop_unsupported_parts(shape, support, max_distance=0.5)  # every vertex within reach
    assert whole is shape and info["removed"] == 0


def test_evaluate_points_single_point_matches_a_batch(sphere_mesh_file):
    """A lone point gets the same answer as in a batch (point-cloud-utils gets a lone query point wrong;
    data_prep.sdf asks for it twice); the viewer's probe reads one point."""
    unit, _ = normalize_mesh(load_mesh(sphere_mesh_file))
    field = MeshSDF(unit)
    points = np.array([[0.0, 0.0, 0.0], [0.3, 0.2, -0.1], [1.5, 0.0, 0.0]], dtype=np.float32)
    together = evaluate_points(field, points)
    one_by_one = np.array([evaluate_points(field, p[None])[0] for p in points])
    np.testing.assert_allclose(one_by_one, together, atol=1e-6)
    assert together[0] == pytest.approx(-1.0, abs=0.02)  # centre of the unit sphere: one radius inside
    chunked = evaluate_points(field, points, batch_size=2)  # a last chunk of one point
    np.testing.assert_allclose(chunked, together, atol=1e-6)
