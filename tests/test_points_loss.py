"""The point-cloud loss terms against finite differences of the field."""

from __future__ import annotations

import numpy as np
import torch

from sdfkit.models.latent_grid import GridSpec, LatentGrid, blend_tiles
from sdfkit.models.siren import ModulatedSiren
from sdfkit.points_loss import surface_terms

BAND = 3.0


def _field(decoder: ModulatedSiren, grid: LatentGrid, points: torch.Tensor) -> torch.Tensor:
    """The blended prediction in unit-frame distance (cell units times the cell)."""
    code, local, weight, side = grid.corners(points)
    return blend_tiles(decoder, code, local, weight, side, BAND, codes=grid.codes) * grid.spec.cell


def _setup():
    torch.manual_seed(0)
    decoder = ModulatedSiren(hidden=32, layers=3, latent_dim=8, w0=30.0).double()
    spec = GridSpec.around(np.array([-0.5] * 3), np.array([0.5] * 3), resolution=4)
    active = np.ones(spec.num_vertices, dtype=bool)
    grid = LatentGrid(spec, active, np.ones(spec.num_vertices), 8, init_std=0.5, seed=0).double()
    points = torch.from_numpy(np.random.default_rng(0).uniform(-0.4, 0.4, (64, 3)))
    return decoder, grid, points


def _finite_difference_gradient(decoder, grid, points, h: float = 1e-6) -> torch.Tensor:
    rows = []
    with torch.no_grad():
        for axis in range(3):
            step = torch.zeros(3, dtype=points.dtype)
            step[axis] = h
            rows.append((_field(decoder, grid, points + step) - _field(decoder, grid, points - step)) / (2 * h))
    return torch.stack(rows, dim=-1)


def test_alignment_and_eikonal_match_finite_differences():
    decoder, grid, points = _setup()
    grad = _finite_difference_gradient(decoder, grid, points)
    normals = grad / grad.norm(dim=-1, keepdim=True)
    alignment, eikonal = surface_terms(decoder, grid, points, normals, BAND)
    assert float(alignment.detach()) < 1e-6
    np.testing.assert_allclose(float(eikonal.detach()), float((grad.norm(dim=-1) - 1).abs().mean()), rtol=1e-5)
    flipped, _ = surface_terms(decoder, grid, points, -normals, BAND)
    np.testing.assert_allclose(float(flipped.detach()), 2.0, atol=1e-6)


def test_the_terms_reach_the_codes():
    decoder, grid, points = _setup()
    alignment, eikonal = surface_terms(decoder, grid, points, torch.nn.functional.normalize(points, dim=-1), BAND)
    (alignment + eikonal).backward()
    assert grid.codes.grad is not None and float(grid.codes.grad.abs().sum()) > 0


def test_a_cloud_with_normals_gets_the_alignment_term_and_one_without_does_not():
    from sdfkit.config import FitConfig
    from sdfkit.points_loss import cloud_loss, cloud_weights, describe_cloud_loss

    decoder, grid, points = _setup()
    decoder, grid = decoder.float(), grid.float()
    normals = torch.nn.functional.normalize(points, dim=-1).numpy()
    fit = FitConfig()
    estimated = cloud_weights("estimated", fit.normal_weight, fit.normal_points)
    assert cloud_loss(decoder, grid, points.numpy(), normals, estimated, BAND) is None
    assert "normal" not in describe_cloud_loss(estimated)
    given = cloud_weights("given", fit.normal_weight, fit.normal_points)
    assert given.normal == fit.normal_weight > 0 and given.points == fit.normal_points
    assert f"{fit.normal_weight:g} x normal" in describe_cloud_loss(given)
    # fit.normal_weight 0 turns the term off for given normals too.
    assert cloud_loss(decoder, grid, points.numpy(), normals, cloud_weights("given", 0.0, 4096), BAND) is None
    loss = cloud_loss(decoder, grid, points.numpy(), normals, given, BAND)
    assert loss is not None
    value = loss()
    value.backward()
    assert torch.isfinite(value) and float(grid.codes.grad.abs().sum()) > 0


def test_a_term_taken_every_third_step_weighs_three_times_on_those_steps():
    """Steps 1, 4, 7 take the terms at three times the weight, on the points an every-step loss draws on its own
    first three calls; the steps between return None."""
    from sdfkit.points_loss import SurfaceWeights, describe_cloud_loss, surface_loss

    decoder, grid, points = _setup()
    normals = torch.nn.functional.normalize(points, dim=-1)
    every_step = surface_loss(decoder, grid, points, normals, BAND, SurfaceWeights(normal=0.1, points=16))
    third = surface_loss(decoder, grid, points, normals, BAND, SurfaceWeights(normal=0.1, points=16, every=3))
    expected = [every_step() for _ in range(3)]
    taken = [third() for _ in range(7)]
    assert [value is None for value in taken] == [False, True, True, False, True, True, False]
    for value, reference in zip([taken[0], taken[3], taken[6]], expected):
        assert value is not None and reference is not None
        np.testing.assert_allclose(float(value.detach()), 3.0 * float(reference.detach()), rtol=1e-12)
    assert "every 3 steps" in describe_cloud_loss(SurfaceWeights(normal=0.1, every=3))
