"""``sdfkit.scene``: which samples a scene keeps, and how its grid's resolution is chosen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from data_prep.errors import SdfkitError
from sdfkit.models.latent_grid import GlobalGrid, auto_resolution
from sdfkit.scene import BatchDraw, add_beyond_samples, grid_for_samples, grid_resolution, make_scene, uncovered_points

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


def _cells_reached(grid) -> set[tuple[int, int, int]]:
    """Slow reference: every cell with an active tile at one of its 8 corners."""
    nx, ny, nz = grid.spec.cells
    lookup = grid.lookup.numpy().reshape(grid.spec.vertex_shape)
    return {(i, j, k) for i in range(nx) for j in range(ny) for k in range(nz)
            if (lookup[i:i + 2, j:j + 2, k:k + 2] >= 0).any()}


def test_uncovered_points_fill_the_cells_active_tiles_reach_at_the_density_and_only_where_uncovered():
    scene = make_scene(sphere_samples(3000), small_config(resolution=6))
    spec = scene.grid.spec
    reached = _cells_reached(scene.grid)
    assert 0 < len(reached) < np.prod(spec.cells)

    density = 2.0e4
    everywhere = uncovered_points(scene.grid, density, lambda p: np.zeros(len(p), dtype=bool), seed=1)
    cells = {tuple(c) for c in np.floor((everywhere - np.asarray(spec.origin)) / spec.cell).astype(int)}
    assert cells <= reached and len(cells) > 0.9 * len(reached)
    expected = density * len(reached) * spec.cell**3
    assert abs(len(everywhere) - expected) < 5 * np.sqrt(expected)

    inside_ball = lambda p: np.linalg.norm(p, axis=1) < 0.6  # noqa: E731
    outside = uncovered_points(scene.grid, density, inside_ball, seed=1)
    assert len(outside) and not inside_ball(outside).any()
    assert abs(len(outside) - (~inside_ball(everywhere)).sum()) < 5 * np.sqrt(len(outside))


def test_beyond_samples_are_appended_with_their_distances_and_drawn_as_their_share():
    scene = make_scene(sphere_samples(3000), small_config(resolution=6))
    covered = lambda p: np.linalg.norm(p, axis=1) < 0.6  # noqa: E731
    sdf = lambda p: np.linalg.norm(p, axis=1) - 0.5  # noqa: E731
    grown = add_beyond_samples(scene, 2.0e4, covered, sdf, seed=1)
    n = len(scene.points)
    torch.testing.assert_close(grown.points[:n], scene.points)
    torch.testing.assert_close(grown.sdf[n:], torch.as_tensor(sdf(grown.points[n:].numpy()), dtype=torch.float32))
    assert grown.beyond is not None
    np.testing.assert_array_equal(grown.beyond.numpy(), np.flatnonzero(~covered(grown.points.numpy())))
    assert (grown.beyond >= n).sum() == len(grown.points) - n  # every added sample, and the old ones out there

    draw = BatchDraw.of(grown, 1000, surface_fraction=0.5, beyond_fraction=0.1)
    idx = draw.sample(torch.Generator().manual_seed(0)).numpy()
    beyond = np.zeros(len(grown.points), dtype=bool)
    beyond[grown.beyond.numpy()] = True
    assert len(idx) == 1000 and beyond[idx[-100:]].all()
    # Without the share the draw is the one a scene without beyond samples gets.
    plain = BatchDraw.of(grown, 1000, surface_fraction=0.5).sample(torch.Generator().manual_seed(0))
    same = BatchDraw.of(dataclasses.replace(grown, beyond=None), 1000, surface_fraction=0.5)
    torch.testing.assert_close(plain, same.sample(torch.Generator().manual_seed(0)))
