"""How a step is taken: chunked backward, forward precision, compilation, the codes' Adam, their running average
and the learning-rate schedule.

Training (decoder and codes) and fitting (codes only) both step through these;
the objective itself is :mod:`sdfkit.loss`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from sdfkit.config import check_precision
from sdfkit.loss import clamped_l1_terms
from sdfkit.models.latent_grid import LatentGrid, blend_tiles
from sdfkit.models.siren import ModulatedSiren
from sdfkit.runtime import resolve_precision


def backward_in_chunks(
    decoder: ModulatedSiren, grids: LatentGrid | Sequence[LatentGrid], points: Tensor | Sequence[Tensor],
    sdf: Tensor | Sequence[Tensor], band: float, code_reg: float, max_points: int | None, precision: str = "fp32",
    weight_floor: float = 0.0,
) -> Tensor:
    """Back-propagate the fitting loss of one batch of one or several scenes, in chunks of at most ``max_points``.

    Each scene's loss is :func:`scene_loss` of its own points (its L1 averaged over them, plus its code prior),
    and the scenes' losses are summed: every scene's codes get the gradient they would get alone, while one
    decoder pass serves them all (several shapes fitted in one batch). grids : one grid or a list;
    points : (B_s, 3) per grid; sdf : (B_s,) per grid.

    The gradients equal those of the whole batch at once, while the activations
    held at any time are one chunk's: on a CPU a step's large temporaries then
    stay below the allocator's mmap threshold and are reused instead of being
    paged in afresh at every step. The amplitudes of every code are computed
    once per step and their gradient gathered over the chunks before it goes
    through the modulation network, so chunks add no amplitude work. Each
    chunk gathers the amplitude rows it uses outside the graph, and their
    gradients are added into the table's by row, so a chunk's backward costs
    what its rows cost, not the size of the whole table (a scene's tens of
    thousands of codes). ``max_points`` None: one pass. ``precision`` applies
    to the forward passes (:func:`precision_scope`).

    ``weight_floor``: a point's tiles whose trilinear weight is below it still enter its prediction, evaluated
    without a graph, but send no gradient: the loss is the same, and the gradient loses the shares those rows
    carry. At 0.05 they are 42% of a fit's sample rows, holding 6% of the blend's weight, and each skips a
    backward that costs about twice its forward (:attr:`sdfkit.config.FitConfig.refine_weight_floor`). 0: every
    row sends its gradient.
    Returns the scenes' mean L1 term (detached).
    """
    if isinstance(grids, LatentGrid):
        grids, points, sdf = [grids], [points], [sdf]  # type: ignore[list-item]
    grids, points, sdf = list(grids), list(points), list(sdf)  # type: ignore[arg-type]
    corners, offset = [], 0
    for grid, pts, dist in zip(grids, points, sdf):
        code, local, weight, side = grid.corners(pts)
        # Each point in its own grid's cell units, weighted by its share of its own scene's mean.
        corners.append((torch.where(code >= 0, code + offset, code), local, weight, side, dist / grid.spec.cell,
                        torch.full_like(dist, 1.0 / len(pts))))
        offset += grid.num_codes
    code, local, weight, side, target, share = (torch.cat(t) for t in zip(*corners))
    with precision_scope(points[0].device, precision):  # the forward passes only, as autocast asks
        amps = torch.cat([decoder.amplitudes(grid.codes) for grid in grids], dim=1)
    table = amps.detach()
    table_grad = torch.zeros_like(table)
    count = len(target)
    size = -(-count // -(-count // max_points)) if max_points else count  # equal chunks
    l1_sum = torch.zeros((), device=target.device)
    for start in range(0, count, size):
        rows = slice(start, start + size)
        chunk_code, chunk_weight, chunk_local, chunk_side = code[rows], weight[rows], local[rows], side[rows]
        light_pred = None
        if weight_floor > 0:
            # The light rows' share of the blend as a constant; the heavy rows' pass below leaves them out.
            heavy = chunk_weight >= weight_floor
            with torch.no_grad(), precision_scope(target.device, precision):
                light_pred = blend_tiles(decoder, torch.where(heavy, -1, chunk_code), chunk_local,
                                         torch.where(heavy, 0.0, chunk_weight), chunk_side, band, amps=table)
            chunk_code = torch.where(heavy, chunk_code, -1)
            chunk_weight = torch.where(heavy, chunk_weight, 0.0)
        used = chunk_code[chunk_code >= 0]
        gathered = [layer.index_select(0, used).requires_grad_() for layer in table]
        with precision_scope(target.device, precision):
            pred = blend_tiles(decoder, chunk_code, chunk_local, chunk_weight, chunk_side, band, amps=gathered,
                               gathered=True)
        if light_pred is not None:
            pred = pred + light_pred
        l1 = (clamped_l1_terms(pred, target[rows], band) * share[rows]).sum()
        l1.backward()
        for layer_grad, rows_amps in zip(table_grad, gathered):
            if rows_amps.grad is not None:  # None when no point of the chunk reaches an active tile
                layer_grad.index_add_(0, used, rows_amps.grad)
        l1_sum += l1.detach()
    prior = torch.stack([grid.codes.pow(2).sum() / len(grid.codes) for grid in grids]).sum()
    torch.autograd.backward([amps, code_reg * prior], [table_grad, None])
    return l1_sum / len(grids)


@contextlib.contextmanager
def precision_scope(device: torch.device, precision: str) -> Iterator[None]:
    """The arithmetic of a step's forward pass.

    ``fp32``: full float32. ``tf32``: float32 tensors with matrix products in
    TF32 on GPUs that have it. ``bf16``: autocast to bfloat16 (matrix products
    and the activations between them); the loss and the optimiser stay float32.
    ``auto``: :func:`sdfkit.runtime.resolve_precision`'s choice for ``device``.
    """
    precision = resolve_precision(precision, device)
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    elif precision == "tf32":
        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(previous)
    else:
        check_precision(precision)
        yield


@contextlib.contextmanager
def compiled_synthesis(decoder: ModulatedSiren, enabled: bool) -> Iterator[None]:
    """While active, ``decoder.synthesis`` runs through ``torch.compile``.

    The row count changes every step (points reach different numbers of active
    tiles), so the graph is compiled once with dynamic shapes instead of once
    per count. The decoder's weights and saved form are untouched.
    """
    if not enabled:
        yield
        return
    decoder.synthesis = torch.compile(decoder.synthesis, dynamic=True)
    try:
        yield
    finally:
        del decoder.synthesis


class CodeAdam:
    """Adam on a few tensors (the latent codes of a fit), step for step what ``torch.optim.Adam`` computes with its
    defaults on a CPU (the single-tensor path: no weight decay, no AMSGrad).

    ``torch.optim``'s optimisers import ``torch._dynamo`` when first made, about 1.6 s on a 2-core CPU: a tenth of a
    fit's time outside the refinement, for the few lines below. ``lr`` may change between steps.
    """

    def __init__(self, params: Sequence[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [0 for _ in self.params]  # per tensor, as torch counts: a step without a gradient is none

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every tensor with a gradient, from the moments of its steps before."""
        beta1, beta2 = self.betas
        for i, (p, exp_avg, exp_avg_sq) in enumerate(zip(self.params, self.exp_avg, self.exp_avg_sq)):
            if p.grad is None:
                continue
            self.steps[i] += 1
            bias_correction1 = 1 - beta1 ** float(self.steps[i])
            bias_correction2_sqrt = (1 - beta2 ** float(self.steps[i])) ** 0.5
            exp_avg.lerp_(p.grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-self.lr / bias_correction1)


class RunningAverage:
    """An exponential moving average of a few tensors (the latent codes of a fit) over the optimiser's steps.

    It starts at the tensors' values; each :meth:`update` moves it ``1 - decay`` of the way to their current values,
    and :meth:`store` writes it into them. Small batches leave the last step's codes scattered about the optimum the
    schedule is settling on; the average of the last few tens of steps lies nearer it, at the cost of one
    interpolation per step. ``decay`` 0: :meth:`store` leaves the last step's values.
    """

    def __init__(self, params: Sequence[Tensor], decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.params, self.decay = list(params), decay
        self.values = [p.detach().clone() for p in self.params] if decay > 0 else []

    @torch.no_grad()
    def update(self) -> None:
        for value, p in zip(self.values, self.params):
            value.lerp_(p, 1.0 - self.decay)

    @torch.no_grad()
    def store(self) -> None:
        for value, p in zip(self.values, self.params):
            p.copy_(value)


def cosine_factor(progress: float, final_fraction: float) -> float:
    """Factor on the initial learning rate: cosine from 1 at progress 0 to ``final_fraction`` at progress 1."""
    progress = min(max(progress, 0.0), 1.0)
    return float(final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + np.cos(np.pi * progress)))


def cosine_lr(step: int, total: int, final_fraction: float) -> float:
    """:func:`cosine_factor` at step ``step`` of ``total``."""
    return cosine_factor(step / max(total, 1), final_fraction)
