"""``sdfkit.scene``: which samples a scene keeps, and how its grid's resolution is chosen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from data_prep.errors import SdfkitError
from sdfkit.models.latent_grid import GlobalGrid, auto_resolution
from sdfkit.scene import (
    CURVE_BITS,
    BatchDraw,
    curve_order,
    grid_for_samples,
    grid_resolution,
    make_scene,
    random_starts,
    stratified_pick,
)

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


def test_a_raised_resolution_meets_the_code_floor_by_the_square_root_of_the_shortfall():
    from sdfkit.scene import raised_resolution

    assert raised_resolution(40, 5000, 1, 4096, 160) == 40  # enough tiles: unchanged
    assert raised_resolution(40, 2075, 1, 4096, 160) == round(40 * (4096 / 2075) ** 0.5) == 56
    assert raised_resolution(40, 30000, 9, 4096, 160) == round(40 * (9 * 4096 / 30000) ** 0.5)  # per object
    assert raised_resolution(40, 10, 1, 4096, 160) == 160  # capped
    assert raised_resolution(40, 10, 1, 0, 160) == 40  # 0: never raised
    assert raised_resolution(200, 10, 1, 4096, 160) == 200  # never lowered


def test_a_grid_with_too_few_tiles_is_made_finer_until_it_has_them():
    """On a sphere at 6 cells per object the floor raises the resolution; the tiles then reach it, as the
    square-law estimate expects of a surface."""
    samples = sphere_samples(20000)
    unit = trimesh.creation.icosphere(subdivisions=3, radius=float(np.linalg.norm(samples.surface_points, axis=1)[0]))
    base = dataclasses.replace(small_config(), grid=dataclasses.replace(
        small_config().grid, resolution=None, cells_per_object=6.0, max_resolution=64))
    coarse = grid_for_samples(samples, dataclasses.replace(base, grid=dataclasses.replace(
        base.grid, min_codes_per_object=0)), mesh_unit=unit)
    padding = 2 * base.grid.padding_cells
    assert max(coarse.spec.cells) == grid_resolution(samples, base, mesh_unit=unit) + padding
    floor = 4 * coarse.num_codes
    fine = grid_for_samples(samples, dataclasses.replace(base, grid=dataclasses.replace(
        base.grid, min_codes_per_object=floor)), mesh_unit=unit)
    assert max(fine.spec.cells) > max(coarse.spec.cells)
    assert 0.75 * floor <= fine.num_codes <= 1.5 * floor
    # A fixed resolution is never raised.
    fixed = grid_for_samples(samples, dataclasses.replace(base, grid=dataclasses.replace(
        base.grid, resolution=8, min_codes_per_object=10**6)))
    assert max(fixed.spec.cells) == 8 + padding


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


def slow_morton_key(cell: tuple[int, int, int]) -> int:
    """The Z-order key of one lattice cell, bit by bit: bit b of axis a goes to bit 3 b + a."""
    return sum(((cell[axis] >> bit) & 1) << (3 * bit + axis) for bit in range(CURVE_BITS) for axis in range(3))


def test_curve_order_sorts_points_by_their_morton_key():
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(3)) * torch.tensor([2.0, 1.0, 0.5]) - 0.3
    order = curve_order(points).numpy()
    assert sorted(order.tolist()) == list(range(len(points)))
    lo, hi = points.min(dim=0).values, points.max(dim=0).values
    steps = (1 << CURVE_BITS) - 1
    cells = ((points - lo) / (hi - lo) * steps).round().long().tolist()
    keys = [slow_morton_key(tuple(cell)) for cell in cells]
    assert [keys[i] for i in order] == sorted(keys)


def test_a_stratified_pick_takes_one_position_from_each_stratum_and_each_position_alike():
    count, picks = 1000, 37
    gen = torch.Generator().manual_seed(0)
    for shift in (0.0, 0.3, 0.9):
        pos = stratified_pick(count, random_starts(picks, gen), shift).tolist()
        # Stratum k is [k count / picks, (k + 1) count / picks), in whole numbers.
        assert all(k * count // picks <= p and p * picks < (k + 1) * count for k, p in enumerate(pos))
    # Over draws from uniform starts every position comes up at picks / count per draw.
    draws = [stratified_pick(100, random_starts(7, gen)) for _ in range(4000)]
    hits = np.bincount(torch.cat(draws).numpy(), minlength=100)
    expected = 4000 * 7 / 100
    assert np.abs(hits - expected).max() < 5 * np.sqrt(expected)


def test_a_batch_draws_steps_cover_each_stratum_evenly():
    width, strata, steps = 100, 10, 10
    draw = BatchDraw(torch.empty(0, dtype=torch.long), torch.arange(width * strata), 0, strata)
    gen = torch.Generator().manual_seed(4)
    picks = torch.stack([draw.sample(gen) for _ in range(steps)])  # (steps, strata)
    assert draw.steps_drawn == steps
    for k in range(strata):
        where = np.sort((picks[:, k].numpy() - k * width) / width)
        assert where.min() >= 0 and where.max() < 1
        # The golden ratio's steps leave no gap wider than 0.15 of the stratum (plus a position's rounding);
        # ten independent draws would leave one wider than 0.25 in most strata.
        gaps = np.diff(np.append(where, where[0] + 1))
        assert gaps.max() < 0.17


def test_a_stratified_draw_of_every_sample_takes_each_once():
    scene = make_scene(sphere_samples(3000), small_config(resolution=6))
    n = len(scene.points)
    idx = BatchDraw.of(scene, n).sample(torch.Generator().manual_seed(1))
    assert sorted(idx.tolist()) == list(range(n))
    # Independent draws repeat some samples and miss others; the fit's `stratify: false` draws so.
    plain = BatchDraw.of(scene, n, stratify=False).sample(torch.Generator().manual_seed(1))
    assert len(set(plain.tolist())) < 0.7 * n
    # The near share is stratified along the curve too: a draw of as many as there are near samples takes each once.
    band = 0.25
    near = torch.nonzero(scene.sdf.abs() < band * scene.grid.spec.cell).squeeze(1)
    draw = BatchDraw.of(scene, 2 * len(near), surface_fraction=0.5, surface_band=band)
    assert draw.near == len(near)
    assert sorted(draw.sample(torch.Generator().manual_seed(2))[: draw.near].tolist()) == sorted(near.tolist())
