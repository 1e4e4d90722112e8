"""The training and fitting objective: DeepSDF's clamped L1 in cell units plus an L2 prior on the codes.

Signed distances are negative inside; the loss compares them in cell units
(distance / cell) so that one decoder serves grids of any resolution.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sdfkit.models.latent_grid import LatentGrid, blend_tiles
from sdfkit.models.siren import ModulatedSiren


def clamped_l1(pred: Tensor, target: Tensor, band: float) -> Tensor:
    """DeepSDF's clamped L1, sum of |clamp(pred) - clamp(target)| over [-band, band], that never loses its gradient.

    pred, target : (N,) -> scalar, in the units of ``band`` (cell units).
    Where the prediction lies within the band, and where both lie beyond it on
    the same side, this is DeepSDF's loss. A prediction beyond the band whose
    clamped target is not there scores |pred - clamp(target)| instead: DeepSDF's
    clamp passes it no gradient, so a decoder whose predictions all drift out on
    one side (most samples of a scene lie outside its surfaces) could never come
    back; here it is pulled back. Both losses have the same minimisers.
    """
    return clamped_l1_terms(pred, target, band).sum()


def clamped_l1_terms(pred: Tensor, target: Tensor, band: float) -> Tensor:
    """(N,) the per-point terms of :func:`clamped_l1` (0 where both lie beyond the band on one side)."""
    goal = torch.clamp(target, -band, band)
    settled = ((target >= band) & (pred >= band)) | ((target <= -band) & (pred <= -band))
    return torch.where(settled, torch.zeros_like(pred), (pred - goal).abs())


def scene_loss(
    decoder: ModulatedSiren,
    grids: LatentGrid | list[LatentGrid],
    points: Tensor | list[Tensor],
    sdf: Tensor | list[Tensor],
    band: float,
    code_reg: float,
    point_count: int | None = None,
    code_count: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Clamped L1 in cell units plus the L2 code prior, over one or several scenes at once.

    Several scenes are evaluated in one decoder pass: their code tables are
    concatenated and each scene's tile indices offset into it, so a step costs
    one batched synthesis however many scenes it draws from.

    grids : one grid or a list; points : (B_s, 3) per grid; sdf : (B_s,) per grid.
    point_count, code_count : divide the sums by these instead of the local
    counts (a process's share of a loss averaged over several processes).
    Returns (total loss, L1 term), both scalars.
    """
    if isinstance(grids, LatentGrid):
        grids, points, sdf = [grids], [points], [sdf]  # type: ignore[list-item]
    parts: list[tuple[Tensor, ...]] = []
    offset = 0
    for grid, pts, dist in zip(grids, points, sdf):
        code, local, weight, side = grid.corners(pts)
        code = torch.where(code >= 0, code + offset, code)
        parts.append((code, local, weight, side, dist / grid.spec.cell))
        offset += grid.num_codes
    code, local, weight, side, target = (torch.cat(t) for t in zip(*parts))
    codes = grids[0].codes if len(grids) == 1 else torch.cat([g.codes for g in grids])
    pred = blend_tiles(decoder, code, local, weight, side, band, codes=codes)
    l1 = clamped_l1(pred, target, band) / (point_count or len(target))
    prior = codes.pow(2).sum() / (code_count or len(codes))
    return l1 + code_reg * prior, l1
