"""Levenberg-Marquardt on the codes of a frozen decoder, one colour of tiles at a time.

The field at a point is ``sum_t w_t(x) g(x - c_t; z_t)`` over the 8 tiles at the
corners of its cell. Colour a tile by the parities of its vertex's indices (8
colours): the 8 corners of a cell have 8 different colours, so every point lies
in exactly one tile of each colour, and two tiles of one colour share no point.
A sweep visits the colours in turn; for one colour the codes are independent
problems, one 64 x 64 system per tile (block Gauss-Seidel, so neighbours never
correct the same residual twice).

For one colour, each point's tile of that colour gets its own copy of the code
(a leaf that requires grad); one forward and one backward of the weighted
prediction summed over points give, per copy, the gradient of that point's
prediction alone: the Jacobian row of the (point, tile) pair. The L1 objective is
met by iteratively reweighted least squares (weights 1 / max(|r|, eps)); the
per-tile normal equations are accumulated with ``index_add_`` and solved in one
batched Cholesky. Each tile's step is kept only where it lowers that tile's part
of the loss on the sweep's points (its damping then falls; else it rises), so the
batch loss never rises.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from sdfkit.loss import clamped_l1_terms
from sdfkit.models.latent_grid import LatentGrid
from sdfkit.models.siren import ModulatedSiren

#: IRLS floor on |residual| (cell units): below it the L1 term is treated as quadratic. Measured on the penguin
#: from the encoder's codes (benchmarks/lm_vs_adam.py): 1e-3 over-weights the points already fitted and the first
#: sweeps keep few steps; 0.05 with a start damping of 1 lowered the held-out L1 fastest.
IRLS_FLOOR = 0.05
#: Damping of a tile at the first sweep, then multiplied on a rejected step and divided on a kept one.
LAMBDA_START, LAMBDA_UP, LAMBDA_DOWN = 1.0, 10.0, 3.0
LAMBDA_MIN, LAMBDA_MAX = 1e-6, 1e6


def tile_colours(grid: LatentGrid) -> Tensor:
    """(T,) long in [0, 8): the parities of each active tile's vertex indices, as 3 bits."""
    ny, nz = grid.spec.vertex_shape[1], grid.spec.vertex_shape[2]
    vertex = torch.nonzero(grid.lookup >= 0).squeeze(1)  # lookup rows are numbered in vertex order
    i, j, k = vertex // (ny * nz), (vertex // nz) % ny, vertex % nz
    return (i % 2) * 4 + (j % 2) * 2 + k % 2


def pair_jacobian(decoder: ModulatedSiren, codes: Tensor, tile: Tensor, local: Tensor, weight: Tensor,
                  ) -> tuple[Tensor, Tensor]:
    """Each (point, tile) pair's weighted contribution ``w g(u; z_tile)`` and its gradient in ``z_tile``.

    codes : (T, D); tile : (P,) long rows of ``codes``; local : (P, 3) the points in their tile's
    coordinates; weight : (P,) blending weights.
    Returns contribution (P,) and Jacobian (P, D). Every pair has its own copy of its code, so the
    gradient of the summed contributions with respect to that copy is the pair's own Jacobian row.
    """
    with torch.enable_grad():
        z = codes.detach().index_select(0, tile).requires_grad_()
        index = torch.arange(len(tile), device=tile.device)
        out = weight * decoder.synthesis(local, decoder.amplitudes(z), index)
        (jac,) = torch.autograd.grad(out.sum(), z)
    return out.detach(), jac


def tile_contributions(decoder: ModulatedSiren, codes: Tensor, code: Tensor, local: Tensor, weight: Tensor,
                       side: Tensor, band: float) -> Tensor:
    """(N, 8) each corner tile's weighted value at each point (their row sums are the blended field, in cells).

    code, local, weight, side : from :meth:`LatentGrid.corners`, (N, 8[, 3]).
    """
    active = code >= 0
    values = side * band * weight
    if bool(active.any()):
        with torch.no_grad():
            pred = decoder.synthesis(local[active], decoder.amplitudes(codes), code[active])
        values = values.masked_scatter(active, weight[active] * pred)
    return values


def normal_equations(jac: Tensor, weight: Tensor, residual: Tensor, slot: Tensor, tiles: int,
                     ) -> tuple[Tensor, Tensor]:
    """Per-tile ``sum w j j^T`` (tiles, D, D) and ``sum w r j`` (tiles, D) over the pairs.

    jac : (P, D); weight, residual : (P,); slot : (P,) long in [0, tiles), the tile of each pair.
    The pairs are grouped by tile into a zero-padded (tiles, most pairs of a tile, D) block, so
    the sums are one batched matrix product.
    """
    dim = jac.shape[1]
    order = torch.argsort(slot, stable=True)
    slot_sorted = slot[order]
    counts = torch.bincount(slot_sorted, minlength=tiles)
    start = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(slot), device=slot.device) - start[slot_sorted]
    width = int(counts.max()) if len(slot) else 0
    padded = jac.new_zeros(tiles, max(width, 1), dim)
    padded[slot_sorted, position] = jac[order]
    weighted = jac.new_zeros(tiles, max(width, 1), dim)
    weighted[slot_sorted, position] = jac[order] * weight[order, None]
    hessian = torch.bmm(padded.transpose(1, 2), weighted)
    gradient = jac.new_zeros(tiles, dim).index_add_(0, slot, jac * (weight * residual)[:, None])
    return hessian, gradient


def damped_steps(hessian: Tensor, gradient: Tensor, damping: Tensor) -> Tensor:
    """(T, D) Levenberg-Marquardt steps ``-(H + lambda diag(H))^-1 g``, all tiles in one batched solve.

    hessian : (T, D, D) positive semi-definite; gradient : (T, D); damping : (T,).
    A tile whose damped matrix is still not positive definite (numerically) gets no step.
    """
    diag = torch.diagonal(hessian, dim1=1, dim2=2)
    scale = diag.mean(dim=1, keepdim=True).clamp(min=1e-12)
    damped = hessian + torch.diag_embed(damping[:, None] * (diag + 1e-6 * scale))
    chol, info = torch.linalg.cholesky_ex(damped)
    ok = info == 0
    chol = torch.where(ok[:, None, None], chol, torch.eye(hessian.shape[1], dtype=chol.dtype, device=chol.device))
    step = -torch.cholesky_solve(gradient.unsqueeze(-1), chol).squeeze(-1)
    return torch.where(ok[:, None], step, torch.zeros_like(step))


def colour_pass(
    decoder: ModulatedSiren, codes: Tensor, members: Tensor, damping: Tensor, batch: dict[str, Tensor],
    colour_mask: Tensor, prior: float, band: float,
) -> int:
    """One LM step for the tiles of one colour; ``codes``, ``damping`` and ``batch["contrib"]`` updated in place.

    members : (Tc,) code rows of the colour's tiles; damping : (T,) per-tile lambda.
    batch : ``code``, ``local``, ``weight`` (N, 8[, 3]) from :meth:`LatentGrid.corners`, ``target`` (N,) in
    cells and ``contrib`` (N, 8) from :func:`tile_contributions`.
    colour_mask : (N, 8) bool, each point's active tile of this colour (at most one per row).
    prior : weight of ``|z|^2`` per tile, relative to one point's L1 term.
    Returns the number of tiles whose step was kept.
    """
    rows, corner = torch.nonzero(colour_mask, as_tuple=True)
    if len(members) == 0:
        return 0
    slot_of = torch.full((len(codes),), -1, dtype=torch.long, device=codes.device)
    slot_of[members] = torch.arange(len(members), device=codes.device)
    tile = batch["code"][rows, corner]
    slot = slot_of[tile]
    target = batch["target"][rows]
    old = batch["contrib"][rows, corner]
    rest = batch["contrib"][rows].sum(dim=1) - old
    value, jac = pair_jacobian(decoder, codes, tile, batch["local"][rows, corner], batch["weight"][rows, corner])
    pred = rest + value
    residual = pred - torch.clamp(target, -band, band)
    settled = clamped_l1_terms(pred, target, band) == 0
    irls = torch.where(settled, torch.zeros_like(pred), 1.0 / residual.abs().clamp(min=IRLS_FLOOR))
    hessian, gradient = normal_equations(jac, irls, residual, slot, len(members))
    z = codes[members]
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    hessian = hessian + 2.0 * prior * eye
    gradient = gradient + 2.0 * prior * z
    z_new = z + damped_steps(hessian, gradient, damping[members])
    with torch.no_grad():
        new = batch["weight"][rows, corner] * decoder.synthesis(
            batch["local"][rows, corner], decoder.amplitudes(z_new), slot)
    change = prior * (z_new.pow(2).sum(1) - z.pow(2).sum(1))
    change = change.index_add(0, slot, clamped_l1_terms(rest + new, target, band)
                              - clamped_l1_terms(pred, target, band))
    kept = change < 0
    codes[members] = torch.where(kept[:, None], z_new, z)
    batch["contrib"][rows, corner] = torch.where(kept[slot], new, value)
    damping[members] = torch.where(kept, damping[members] / LAMBDA_DOWN, damping[members] * LAMBDA_UP).clamp(
        LAMBDA_MIN, LAMBDA_MAX)
    return int(kept.sum())


def lm_fit_codes(
    decoder: ModulatedSiren, grid: LatentGrid, points: Tensor, sdf: Tensor, band: float, code_reg: float,
    sweeps: int, batch_points: int, seed: int = 0, max_seconds: float | None = None,
    on_sweep: Callable[[int, float], None] | None = None,
) -> tuple[int, float]:
    """Fit ``grid.codes`` (in place) to the samples by colour-by-colour LM sweeps; the decoder stays frozen.

    points : (n, 3) unit frame; sdf : (n,) exact, negative inside. Each sweep draws ``batch_points``
    samples and visits the 8 colours once. The objective is the fit's: mean clamped L1 in cells plus
    ``code_reg`` times the mean squared code norm. Stops after ``sweeps`` sweeps or once ``max_seconds``
    have passed (checked after every colour). ``grid.codes`` holds each sweep's codes when ``on_sweep(sweep, l1)``
    is called after it.
    Returns (sweeps begun, the last sweep's mean L1 in cells on its batch).
    """
    t0 = time.perf_counter()
    codes = grid.codes.detach().clone()
    colours = tile_colours(grid)
    members = [torch.nonzero(colours == c).squeeze(1) for c in range(8)]
    damping = torch.full((len(codes),), LAMBDA_START, dtype=codes.dtype, device=codes.device)
    gen = torch.Generator(device=points.device).manual_seed(seed)
    count = min(batch_points, len(points))
    # Per point, the prior's weight: the fit's loss divides the L1 sum by the points, the prior by the codes.
    prior = code_reg * count / len(codes)
    l1, sweep = float("nan"), 0
    out_of_time = False
    for sweep in range(1, sweeps + 1):
        idx = torch.randint(len(points), (count,), generator=gen, device=points.device)
        code, local, weight, side = grid.corners(points[idx])
        batch = {"code": code, "local": local, "weight": weight, "target": sdf[idx] / grid.spec.cell,
                 "contrib": tile_contributions(decoder, codes, code, local, weight, side, band)}
        colour_of = torch.where(code >= 0, colours[code.clamp(min=0)], torch.full_like(code, -1))
        for c in range(8):
            colour_pass(decoder, codes, members[c], damping, batch, colour_of == c, prior, band)
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                out_of_time = True
                break
        l1 = float(clamped_l1_terms(batch["contrib"].sum(1), batch["target"], band).mean())
        with torch.no_grad():
            grid.codes.copy_(codes)
        if on_sweep is not None:
            on_sweep(sweep, l1)
        if out_of_time:
            break
    return sweep, l1
