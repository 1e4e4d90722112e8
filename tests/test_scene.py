"""``sdfkit.scene``: which samples a scene keeps, and how its grid's resolution is chosen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from data_prep.errors import SdfkitError
from sdfkit.models.latent_grid import GlobalGrid, auto_resolution
from sdfkit.scene import BatchDraw, grid_for_samples, grid_resolution, make_scene

from helpers import small_config, sphere_samples


def test_a_scene_keeps_exactly_the_samples_that_reach_a_code():
    cfg = small_config(resolution=6)
    samples = sphere_samples(3000)
    scene = make_scene(samples, cfg)
    grid = scene.grid
    points = torch.from_numpy(samples.points)
    code, _, _, _ = grid.corners(points)
    reach = ((code >= 0).any(dim=1) & grid.inside_box(points)).numpy()
    assert 0 < reach.sum() < len(points)  # uniform samples far from the sphere are dropped
    np.testing.assert_array_equal(scene.points.numpy(), samples.points[reach])
    np.testing.assert_array_equal(scene.sdf.numpy(), samples.sdf[reach])
    assert scene.normalization == samples.normalization


def test_the_grid_resolution_comes_from_the_config_or_the_mesh():
    samples = sphere_samples(500)
    assert grid_resolution(samples, small_config(resolution=7)) == 7
    cfg = dataclasses.replace(small_config(), grid=dataclasses.replace(small_config().grid, resolution=None))
    unit = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    expected = auto_resolution(unit, cfg.grid.cells_per_object, cfg.grid.max_resolution)
    assert grid_resolution(samples, cfg, mesh_unit=unit) == expected
    # Without a mesh the source is read; a synthetic source cannot be, which says what to set.
    with pytest.raises(SdfkitError, match="set grid.resolution"):
        grid_resolution(samples, cfg)


def test_the_global_layout_is_one_code_over_the_box():
    grid = grid_for_samples(sphere_samples(500), small_config(layout="global"))
    assert isinstance(grid, GlobalGrid) and grid.num_codes == 1
    lo, hi = grid.spec.bounds
    assert np.all(lo < -0.5) and np.all(hi > 0.5)


def test_a_scene_with_no_sample_near_its_surface_is_refused():
    samples = sphere_samples(500)
    far = dataclasses.replace(samples, points=np.full((10, 3), 50.0, dtype=np.float32),
                              sdf=np.full(10, 49.0, dtype=np.float32))
    with pytest.raises(SdfkitError, match="no sample lies near the surface"):
        make_scene(far, small_config(resolution=4), grid=grid_for_samples(samples, small_config(resolution=4)))


def test_a_batch_draw_takes_its_share_near_the_surface_and_the_rest_from_all_samples():
    scene = make_scene(sphere_samples(4000), small_config(resolution=6))
    band = 0.25
    near = (scene.sdf.abs() < band * scene.grid.spec.cell).numpy()
    assert 0 < near.sum() < len(near)
    draw = BatchDraw.of(scene, 1000, surface_fraction=0.75, surface_band=band)
    idx = draw.sample(torch.Generator().manual_seed(0)).numpy()
    assert len(idx) == 1000 and idx.min() >= 0 and idx.max() < len(near)
    # The first 750 are near the surface; the other 250 are drawn from every sample alike (a slow reference count).
    assert all(near[i] for i in idx[:750])
    expected = 250 * near.mean()
    assert abs(sum(bool(near[i]) for i in idx[750:]) - expected) < 4 * np.sqrt(expected)
    # No share: every sample alike, as a fit from noise draws.
    plain = BatchDraw.of(scene, 1000).sample(torch.Generator().manual_seed(0)).numpy()
    assert abs(near[plain].mean() - near.mean()) < 0.1
    # A scene with no sample in the band falls back to drawing from all of them.
    assert BatchDraw.of(scene, 1000, 0.9, surface_band=1e-9).near == 0
