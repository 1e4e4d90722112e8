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


def _field(chunk: int | None = None, band: float = 1.0, padding_cells: int = 1) -> NeuralField:
    cfg = small_config(resolution=5)
    cfg = dataclasses.replace(cfg, grid=dataclasses.replace(cfg.grid, padding_cells=padding_cells))
    grid = grid_for_samples(sphere_samples(800), cfg)
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
