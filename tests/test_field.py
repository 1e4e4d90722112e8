"""``sdfkit.field.NeuralField``: the blended tiles in unit-frame distances, in any chunking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sdfkit.field import NeuralField
from sdfkit.models.latent_grid import blend_tiles
from sdfkit.scene import grid_for_samples

from helpers import random_decoder, small_config, sphere_samples


def _field(chunk: int | None = None, band: float = 1.0, padding_cells: int = 1, resolution: int = 5,
           samples: int = 800) -> NeuralField:
    cfg = small_config(resolution=resolution)
    cfg = dataclasses.replace(cfg, grid=dataclasses.replace(cfg.grid, padding_cells=padding_cells))
    grid = grid_for_samples(sphere_samples(samples), cfg)
    with torch.no_grad():
        grid.codes.normal_(0.0, 0.3)
    return NeuralField(random_decoder(cfg), grid, band, chunk=chunk)


def test_the_field_is_the_blend_in_unit_frame_distances():
    field = _field()
    lo, hi = field.bounds
    points = np.random.default_rng(0).uniform(lo, hi, size=(257, 3)).astype(np.float32)
    got = field(points)
    with torch.no_grad():
        x = torch.from_numpy(points)
        expected = blend_tiles(field.decoder, *field.grid.corners(x), 1.0, codes=field.grid.codes) * field.grid.spec.cell
    assert got.shape == (257,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_outside_the_box_is_outside_the_shape():
    """With no padding the box touches the sphere: a point beyond it would otherwise read the surface's tiles."""
    field = _field(band=2.0, padding_cells=0)
    lo, hi = field.bounds
    centre = (lo + hi) / 2
    beyond = np.array([[hi[0] + 0.05, centre[1], centre[2]], hi + 5.0], dtype=np.float32)
    on_edge = np.array([[hi[0], centre[1], centre[2]]], dtype=np.float32)
    assert abs(field(on_edge)[0] - 2.0 * field.grid.spec.cell) > 1e-4  # the edge itself is not clamped
    np.testing.assert_allclose(field(beyond), 2.0 * field.grid.spec.cell)


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_chunking_does_not_change_the_values(chunk):
    points = np.random.default_rng(1).uniform(-1, 1, size=(150, 3)).astype(np.float32)
    np.testing.assert_allclose(_field(chunk=chunk)(points), _field()(points), rtol=1e-6, atol=1e-7)


def test_may_cross_holds_the_boxes_that_meet_an_active_tiles_region():
    """Against a loop over the active vertices: every box meeting a tile's open region (vertex +- cell) is kept,
    and none whose distance to every active vertex is over a cell (up to round-off)."""
    field = _field(resolution=14, samples=20000)
    spec = field.grid.spec
    vertices = spec.vertex_positions()[(field.grid.lookup >= 0).numpy()]
    rng = np.random.default_rng(1)
    lo_box, hi_box = field.bounds
    lo = rng.uniform(lo_box - 0.3, hi_box, size=(400, 3))
    hi = lo + rng.uniform(0.0, 0.5, size=(400, 3))
    got = field.may_cross(lo, hi)
    for b in range(len(lo)):
        meets = any(np.all((lo[b] - spec.cell < v) & (v < hi[b] + spec.cell)) for v in vertices)
        near = any(np.all((lo[b] - 1.001 * spec.cell <= v) & (v <= hi[b] + 1.001 * spec.cell)) for v in vertices)
        assert (not meets or got[b]) and (near or not got[b])
    assert got.any() and not got.all()


def test_the_field_has_one_sign_in_boxes_that_meet_no_active_tile():
    field = _field(resolution=14, samples=20000)
    lo_box, hi_box = field.bounds
    points = np.random.default_rng(2).uniform(lo_box, hi_box, size=(20000, 3))
    ruled_out = ~field.may_cross(points, points)
    values = field(points[ruled_out].astype(np.float32))
    assert ruled_out.sum() > 100
    assert np.all(np.abs(values) > 0.5 * field.grid.spec.cell)


def test_extraction_within_the_active_region_gives_the_dense_mesh():
    """A random decoder's field crosses zero all over its active tiles; with the Lipschitz test off, restricting
    extraction to where the field may cross gives the dense lattice's triangles from fewer evaluations."""
    from sdfkit.extract import evaluate_grid, evaluate_grid_coarse_to_fine, marching_cubes

    field = _field(resolution=20, samples=20000)
    bounds = field.bounds
    dense = evaluate_grid(field, 49, bounds)
    capped, evaluations = evaluate_grid_coarse_to_fine(field, 49, bounds, block=8, lipschitz_factor=1e9,
                                                       region=field.may_cross)
    assert evaluations < 0.8 * 49**3
    a, b = marching_cubes(dense, bounds), marching_cubes(capped, bounds)
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_allclose(a.vertices, b.vertices, rtol=0, atol=1e-6)
