"""Levenberg-Marquardt on the codes: colours, per-pair Jacobians, normal equations, steps, and a real fit."""

from __future__ import annotations

import numpy as np
import torch

from sdfkit.lm import (
    damped_steps,
    lm_fit_codes,
    normal_equations,
    pair_jacobian,
    tile_colours,
    tile_contributions,
)
from sdfkit.loss import scene_loss
from sdfkit.models.latent_grid import GridSpec, LatentGrid, blend_tiles

from helpers import random_decoder, small_config


def _dense_grid(seed: int = 0) -> LatentGrid:
    """A 3^3-cell grid with every tile active and random codes of 8 values."""
    spec = GridSpec(origin=(-1.0, -1.0, -1.0), cell=2.0 / 3.0, cells=(3, 3, 3))
    grid = LatentGrid(spec, np.ones(spec.num_vertices, dtype=bool), np.ones(spec.num_vertices, dtype=np.float32),
                      latent_dim=8, init_std=0.5, seed=seed)
    return grid


def test_the_eight_corners_of_every_cell_have_eight_colours():
    grid = _dense_grid()
    colours = tile_colours(grid)
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 1.98 - 0.99
    code, _, _, _ = grid.corners(points)
    for row in colours[code]:
        assert sorted(row.tolist()) == list(range(8))


def test_pair_jacobian_rows_match_autograd_of_the_blended_field():
    cfg = small_config()
    decoder = random_decoder(cfg)
    grid = _dense_grid()
    points = torch.rand(12, 3, generator=torch.Generator().manual_seed(1)) * 1.9 - 0.95
    code, local, weight, side = grid.corners(points)

    def field(codes: torch.Tensor) -> torch.Tensor:
        return blend_tiles(decoder, code, local, weight, side, band=1.0, codes=codes)

    full = torch.autograd.functional.jacobian(field, grid.codes.detach())  # (N, T, D)
    rows, corner = torch.nonzero(code >= 0, as_tuple=True)
    tile = code[rows, corner]
    value, jac = pair_jacobian(decoder, grid.codes, tile, local[rows, corner], weight[rows, corner])
    torch.testing.assert_close(jac, full[rows, tile], rtol=1e-4, atol=1e-6)
    summed = torch.zeros(len(points)).index_add_(0, rows, value)
    torch.testing.assert_close(summed, field(grid.codes.detach()), rtol=1e-5, atol=1e-6)


def test_tile_contributions_sum_to_the_blended_field():
    cfg = small_config()
    decoder = random_decoder(cfg)
    spec = GridSpec(origin=(-1.0, -1.0, -1.0), cell=0.5, cells=(4, 4, 4))
    active = np.zeros(spec.num_vertices, dtype=bool)
    active[::3] = True
    side = np.where(np.arange(spec.num_vertices) % 2 == 0, -1.0, 1.0).astype(np.float32)
    grid = LatentGrid(spec, active, side, latent_dim=8, init_std=0.5)
    points = torch.rand(300, 3, generator=torch.Generator().manual_seed(2)) * 1.98 - 0.99
    code, local, weight, side_t = grid.corners(points)
    contrib = tile_contributions(decoder, grid.codes.detach(), code, local, weight, side_t, band=1.0)
    expected = blend_tiles(decoder, code, local, weight, side_t, band=1.0, codes=grid.codes.detach())
    torch.testing.assert_close(contrib.sum(dim=1), expected, rtol=1e-5, atol=1e-6)


def test_normal_equations_match_a_loop_over_pairs():
    gen = torch.Generator().manual_seed(3)
    jac = torch.randn(200, 5, generator=gen, dtype=torch.float64)
    weight = torch.rand(200, generator=gen, dtype=torch.float64)
    residual = torch.randn(200, generator=gen, dtype=torch.float64)
    slot = torch.randint(0, 7, (200,), generator=gen)
    slot[slot == 4] = 5  # a tile with no pair
    hessian, gradient = normal_equations(jac, weight, residual, slot, 7)
    for t in range(7):
        h = torch.zeros(5, 5, dtype=torch.float64)
        g = torch.zeros(5, dtype=torch.float64)
        for p in range(200):
            if slot[p] == t:
                h += weight[p] * torch.outer(jac[p], jac[p])
                g += weight[p] * residual[p] * jac[p]
        torch.testing.assert_close(hessian[t], h)
        torch.testing.assert_close(gradient[t], g)


def test_damped_steps_solve_each_tiles_system():
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(6, 10, 4, generator=gen, dtype=torch.float64)
    hessian = a.transpose(1, 2) @ a
    gradient = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    damping = torch.rand(6, generator=gen, dtype=torch.float64)
    steps = damped_steps(hessian, gradient, damping)
    for t in range(6):
        diag = torch.diagonal(hessian[t])
        damped = hessian[t] + torch.diag(damping[t] * (diag + 1e-6 * diag.mean()))
        torch.testing.assert_close(steps[t], -torch.linalg.solve(damped, gradient[t]))


def test_lm_sweeps_lower_the_fit_loss_on_a_real_mesh(shared_meshes):
    """The shipped decoder on the torus, on a coarse grid with few samples so that it runs in seconds."""
    from sdfkit.config import replace_section
    from sdfkit.decoder_io import load_decoder
    from sdfkit.samples import load_or_prepare
    from sdfkit.scene import make_scene

    decoder, cfg, _ = load_decoder(None)
    cfg = replace_section(replace_section(cfg, "grid", resolution=10), "sampling", num_points=40000)
    samples = load_or_prepare(shared_meshes / "val" / "torus.obj", cfg.sampling, seed=0)
    scene = make_scene(samples, cfg, name="torus")
    idx = torch.randint(len(scene.points), (20000,), generator=torch.Generator().manual_seed(5))

    def loss() -> float:
        with torch.no_grad():
            total, _ = scene_loss(decoder, scene.grid, scene.points[idx], scene.sdf[idx], cfg.loss.band,
                                  cfg.loss.code_reg)
        return float(total)

    before = loss()
    losses: list[float] = []
    lm_fit_codes(decoder, scene.grid, scene.points, scene.sdf, cfg.loss.band, cfg.loss.code_reg, sweeps=3,
                 batch_points=32 * scene.grid.num_codes, on_sweep=lambda _s, l1: losses.append(l1))
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert loss() < 0.7 * before
