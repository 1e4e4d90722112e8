"""The Python API end to end on a sphere in its own units: fit, load, distance, gradient, mesh, folder."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import sdfkit
from sdfkit.errors import SdfkitError

CENTER, RADIUS = np.array([1.0, 2.0, 3.0]), 5.0


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS).apply_translation(CENTER)
    mesh.export(folder / "ball.obj")
    sdf = sdfkit.fit_mesh(folder / "ball.obj", folder / "ball", steps=60, grid_resolution=12, resolution=48)
    return sdf, folder


def _near_surface(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return CENTER + direction * RADIUS * rng.uniform(0.98, 1.02, (count, 1))


def test_distance_is_in_the_inputs_units(fitted):
    sdf, folder = fitted
    points = _near_surface(500)
    exact = np.linalg.norm(points - CENTER, axis=1) - RADIUS  # negative inside
    d = sdf.distance(points)
    assert d.shape == (500,) and d.dtype == np.float64
    assert np.median(np.abs(d - exact)) < 0.02 * RADIUS
    assert np.mean(np.sign(d) == np.sign(exact)) > 0.9
    assert np.allclose(sdfkit.load(folder / "ball").distance(points), d)


def test_gradient_matches_finite_differences_and_points_outward(fitted):
    sdf, _ = fitted
    points = _near_surface(50, seed=1)
    d, g = sdf.distance_and_gradient(points)
    assert np.allclose(d, sdf.distance(points), atol=1e-5 * RADIUS)
    h = 1e-3
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = h
        fd = (sdf.distance(points + step) - sdf.distance(points - step)) / (2 * h)
        assert np.allclose(g[:, axis], fd, atol=2e-2)
    outward = (points - CENTER) / np.linalg.norm(points - CENTER, axis=1, keepdims=True)
    assert np.median(np.sum(g * outward, axis=1) / np.linalg.norm(g, axis=1)) > 0.95


def test_mesh_is_in_the_inputs_units(fitted):
    sdf, _ = fitted
    mesh = sdf.mesh(resolution=48)
    radii = np.linalg.norm(mesh.vertices - CENTER, axis=1)
    assert abs(np.median(radii) - RADIUS) < 0.03 * RADIUS


def test_bad_input_is_one_line(fitted):
    sdf, _ = fitted
    with pytest.raises(SdfkitError, match=r"\(n, 3\) array, got shape \(4, 2\)"):
        sdf.distance(np.zeros((4, 2)))
    with pytest.raises(SdfkitError, match="unknown fit option 'stpes'"):
        sdfkit.fit_mesh("x.obj", "out", stpes=3)
