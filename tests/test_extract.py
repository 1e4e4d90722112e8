"""Extraction: coarse-to-fine against dense, orientation, the oracle's quality, memory-safe batching."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.mesh import load_mesh, normalize_mesh
from data_prep.sdf import MeshSDF
from sdfkit.errors import SdfkitError
from sdfkit.extract import evaluate_grid, evaluate_grid_coarse_to_fine, extract_mesh, marching_cubes
from sdfkit.metrics import evaluate_meshes


def sphere_field(points: np.ndarray) -> np.ndarray:
    return (np.linalg.norm(points, axis=1) - 0.6).astype(np.float32)


def test_dense_grid_matches_pointwise_evaluation():
    grid = evaluate_grid(sphere_field, 9, ((-1, -1, -1), (1, 1, 1)))
    axis = np.linspace(-1, 1, 9)
    for i, j, k in [(0, 0, 0), (4, 4, 4), (8, 3, 1), (2, 7, 5)]:
        assert grid[i, j, k] == pytest.approx(np.sqrt(axis[i] ** 2 + axis[j] ** 2 + axis[k] ** 2) - 0.6, abs=1e-6)


@pytest.mark.parametrize("name", ["val/penguin.obj", "train/goathead.obj"])
def test_coarse_to_fine_gives_the_dense_mesh_on_real_shapes(shared_meshes, name):
    unit, _ = normalize_mesh(load_mesh(shared_meshes / name))
    field = MeshSDF(unit)
    bounds = (unit.bounds[0] - 0.05, unit.bounds[1] + 0.05)
    dense = evaluate_grid(field, 65, bounds)
    sparse, evaluations = evaluate_grid_coarse_to_fine(field, 65, bounds)
    assert evaluations < 0.6 * 65**3
    a, b = marching_cubes(dense, bounds), marching_cubes(sparse, bounds)
    assert a.vertices.shape == b.vertices.shape
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)
    np.testing.assert_array_equal(a.faces, b.faces)
    # Every lattice point that was evaluated holds the dense value.
    near = np.abs(dense) < 0.05
    np.testing.assert_allclose(sparse[near], dense[near], atol=1e-6)


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
    metrics = evaluate_meshes(mesh, gt, num_surface=20_000, num_volume=200_000)
    assert metrics["chamfer"] < 1e-6
    assert metrics["iou"] > 0.995
    np.testing.assert_allclose(mesh.bounds, gt.bounds, atol=0.02 * norm.scale)  # in the input's own units


def test_options_and_errors():
    two = lambda p: np.minimum(np.linalg.norm(p - [0.5, 0, 0], axis=1) - 0.3, np.linalg.norm(p + [0.5, 0, 0], axis=1) - 0.1).astype(np.float32)
    both = extract_mesh(two, resolution=64)
    largest = extract_mesh(two, resolution=64, keep_largest=True)
    assert len(both.split(only_watertight=False)) == 2 and len(largest.split(only_watertight=False)) == 1
    assert largest.bounds[0][0] > 0.1
    smooth = extract_mesh(two, resolution=64, smooth_iterations=5)
    assert len(smooth.vertices) == len(both.vertices)
    with pytest.raises(SdfkitError, match="no surface"):
        extract_mesh(lambda p: np.ones(len(p), np.float32), resolution=16)
    with pytest.raises(SdfkitError, match="NaN"):
        extract_mesh(lambda p: np.full(len(p), np.nan, np.float32), resolution=16)
    with pytest.raises(SdfkitError, match="resolution"):
        extract_mesh(sphere_field, resolution=4)


def test_batches_bound_the_calls():
    sizes = []

    def field(p):
        sizes.append(len(p))
        return sphere_field(p)

    extract_mesh(field, resolution=40, batch_size=1000, coarse_to_fine=False)
    assert max(sizes) <= 1000
