"""The modulated SIREN and the latent grid against slow, obviously-correct references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sdfkit.models.latent_grid import CORNERS, GridSpec, LatentGrid, blend_tiles, tile_activity
from sdfkit.models.siren import ModulatedSiren


def small_decoder(seed: int = 0, **kw) -> ModulatedSiren:
    torch.manual_seed(seed)
    return ModulatedSiren(**{"hidden": 8, "layers": 3, "latent_dim": 4, **kw})


def test_amplitudes_match_the_formula_for_hand_set_weights():
    dec = ModulatedSiren(in_dim=3, hidden=2, layers=2, latent_dim=1)
    with torch.no_grad():
        dec.modulation_layers[0].weight.copy_(torch.tensor([[2.0], [-1.0]]))
        dec.modulation_layers[0].bias.copy_(torch.tensor([0.5, 0.25]))
        # layer 2 sees [a_1, z] (3 inputs)
        dec.modulation_layers[1].weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.0, -3.0, 2.0]]))
        dec.modulation_layers[1].bias.copy_(torch.tensor([0.0, 1.0]))
    z = torch.tensor([[1.0], [-1.0]])
    amps = dec.amplitudes(z)  # (layers, T, hidden)
    # z = 1: a1 = relu([2.5, -0.75]) = [2.5, 0]; a2 = relu([2.5 + 0 + 1, 0 - 0 + 2 + 1]) = [3.5, 3]
    # z = -1: a1 = relu([-1.5, 1.25]) = [0, 1.25]; a2 = relu([0 + 1.25 - 1, -3.75 - 2 + 1]) = [0.25, 0]
    expected = torch.tensor([[[2.5, 0.0], [0.0, 1.25]], [[3.5, 3.0], [0.25, 0.0]]])
    torch.testing.assert_close(amps, expected)


def test_synthesis_matches_the_layer_formula():
    dec = small_decoder()
    x, z = torch.rand(5, 3) * 2 - 1, torch.randn(5, 4)
    a = dec.amplitudes(z)
    h = x
    for i, layer in enumerate(dec.synthesis_layers):
        h = a[i] * torch.sin(dec.w0 * (h @ layer.weight.T + layer.bias))
    expected = (h @ dec.output.weight.T + dec.output.bias).squeeze(-1)
    torch.testing.assert_close(dec(x, z), expected, rtol=1e-5, atol=1e-5)
    # Without a graph (extraction, slices) the layers overwrite their blocks in place: the same values, and the
    # amplitude table the rows were gathered from is left as it was.
    index = torch.tensor([4, 0, 0, 2, 1])
    table = a.detach().clone()
    with torch.no_grad():
        in_place = dec.synthesis(x, table, index)
    torch.testing.assert_close(in_place, dec.synthesis(x, a, index).detach(), rtol=0, atol=0)
    torch.testing.assert_close(table, a.detach(), rtol=0, atol=0)
    torch.testing.assert_close(in_place, dec(x, z[index]).detach(), rtol=1e-5, atol=1e-5)
    rows = a.detach()[:, index]  # (layers, M, hidden): row m's own amplitudes, no index
    with torch.no_grad():
        torch.testing.assert_close(dec.synthesis(x, rows, None), in_place, rtol=0, atol=0)
    torch.testing.assert_close(rows, a.detach()[:, index], rtol=0, atol=0)


def test_siren_initialisation_bounds():
    dec = ModulatedSiren(hidden=64, layers=3, latent_dim=8, w0=30.0)
    assert dec.synthesis_layers[0].weight.abs().max() <= 1.0 / 3
    assert dec.synthesis_layers[1].weight.abs().max() <= math.sqrt(6 / 64) / 30 + 1e-7


def make_grid(seed: int = 0, active_fraction: float = 1.0, latent_dim: int = 4) -> LatentGrid:
    spec = GridSpec.around(np.array([-0.5, -0.4, -0.3]), np.array([0.5, 0.4, 0.3]), resolution=4)
    rng = np.random.default_rng(seed)
    active = rng.random(spec.num_vertices) < active_fraction
    side = np.where(rng.random(spec.num_vertices) < 0.5, -1.0, 1.0).astype(np.float32)
    grid = LatentGrid(spec, active, side, latent_dim, init_std=0.5, seed=seed)
    return grid


def reference_blend(dec: ModulatedSiren, grid: LatentGrid, point: np.ndarray, band: float) -> float:
    """One point, one tile at a time, straight from the definitions."""
    spec = grid.spec
    t = (point - np.asarray(spec.origin)) / spec.cell
    base = np.clip(np.floor(t), 0, np.asarray(spec.cells) - 1)
    total = 0.0
    for offset in CORNERS:
        vertex = base + offset
        local = (point - (np.asarray(spec.origin) + vertex * spec.cell)) / spec.cell
        weight = float(np.prod(1.0 - np.abs(local)))
        flat = int(np.ravel_multi_index(vertex.astype(int), spec.vertex_shape))
        row = int(grid.lookup[flat])
        if row < 0:
            value = float(grid.side[flat]) * band
        else:
            with torch.no_grad():
                value = float(dec(torch.tensor(local, dtype=torch.float32)[None], grid.codes[row][None]))
        total += weight * value
    return total


@pytest.mark.parametrize("active_fraction", [1.0, 0.5])
def test_blend_matches_per_tile_reference(active_fraction):
    dec, grid = small_decoder(), make_grid(active_fraction=active_fraction)
    lo, hi = grid.spec.bounds
    pts = np.random.default_rng(1).uniform(lo, hi, size=(40, 3))
    code, local, weight, side = grid.corners(torch.tensor(pts, dtype=torch.float32))
    with torch.no_grad():
        fast = blend_tiles(dec, code, local, weight, side, 1.0, codes=grid.codes).numpy()
        amps = dec.amplitudes(grid.codes)
        fast_amps = blend_tiles(dec, code, local, weight, side, 1.0, amps=amps).numpy()
    slow = np.array([reference_blend(dec, grid, p, 1.0) for p in pts])
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast_amps, slow, rtol=1e-4, atol=1e-5)


def test_weights_are_trilinear_and_sum_to_one():
    grid = make_grid()
    pts = torch.rand(100, 3) * 0.8 - 0.4
    _, local, weight, _ = grid.corners(pts)
    torch.testing.assert_close(weight.sum(dim=1), torch.ones(100))
    assert local.abs().max() <= 1.0 + 1e-6


def test_blended_field_is_continuous_across_tile_borders():
    dec, grid = small_decoder(), make_grid(active_fraction=0.6)
    cell = grid.spec.cell
    # Walk straight through a cell face (x crosses a vertex plane) and a cell corner.
    border_x = grid.spec.origin[0] + 3 * cell
    for direction in (np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]) / math.sqrt(3)):
        start = np.array([border_x, grid.spec.origin[1] + 2.37 * cell, grid.spec.origin[2] + 2.61 * cell])
        if direction[1] > 0:
            start = np.array([border_x, grid.spec.origin[1] + 3 * cell, grid.spec.origin[2] + 3 * cell])
        for eps in (1e-3, 1e-4, 1e-5):
            pair = torch.tensor(np.stack([start - eps * cell * direction, start + eps * cell * direction]), dtype=torch.float32)
            code, local, weight, side = grid.corners(pair)
            with torch.no_grad():
                a, b = blend_tiles(dec, code, local, weight, side, 1.0, codes=grid.codes).tolist()
            # A sine network with w0 = 30 has slope up to ~w0 * amplitude: the jump must shrink with eps.
            assert abs(a - b) < 200 * eps, (eps, a, b)


def test_tile_activity_marks_tiles_near_the_surface():
    # Surface: a sphere of radius 0.5 sampled densely; exact SDF samples inside and out.
    rng = np.random.default_rng(0)
    surf = rng.normal(size=(20000, 3))
    surf = 0.5 * surf / np.linalg.norm(surf, axis=1, keepdims=True)
    pts = rng.uniform(-1, 1, size=(50000, 3))
    sdf = np.linalg.norm(pts, axis=1) - 0.5
    spec = GridSpec.around(np.array([-0.5] * 3), np.array([0.5] * 3), resolution=8)
    active, side = tile_activity(spec, surf, pts, sdf, margin=0.25)
    verts = spec.vertex_positions()
    dist = np.abs(np.linalg.norm(verts, axis=1) - 0.5)
    assert active[dist < spec.cell * math.sqrt(3) - 0.01].all()
    assert not active[dist > spec.cell * (math.sqrt(3) + 0.25) + 0.02].any()
    inner = ~active & (np.linalg.norm(verts, axis=1) < 0.5)
    outer = ~active & (np.linalg.norm(verts, axis=1) > 0.5)
    assert (side[inner] == -1).all() and (side[outer] == 1).all()
    assert inner.any() and outer.any()
