"""How a step is taken: chunked backward, forward precision, compilation and the learning-rate schedule.

Training (decoder and codes) and fitting (codes only) both step through these;
the objective itself is :mod:`sdfkit.loss`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from sdfkit.config import check_precision
from sdfkit.loss import clamped_l1, scene_loss
from sdfkit.models.latent_grid import LatentGrid, blend_tiles
from sdfkit.models.siren import ModulatedSiren


def backward_in_chunks(
    decoder: ModulatedSiren, grid: LatentGrid, points: Tensor, sdf: Tensor, band: float, code_reg: float,
    max_points: int | None, precision: str = "fp32",
) -> Tensor:
    """Back-propagate :func:`scene_loss` of one batch, in chunks of at most ``max_points`` points.

    The gradients equal those of the whole batch at once, while the activations
    held at any time are one chunk's: on a CPU a step's large temporaries then
    stay below the allocator's mmap threshold and are reused instead of being
    paged in afresh at every step. The amplitudes of every code are computed
    once per step and their gradient gathered over the chunks before it goes
    through the modulation network, so chunks add no amplitude work. None:
    one pass. ``precision`` applies to the forward passes (:func:`precision_scope`).
    Returns the batch's L1 term (detached).
    """
    count = len(points)
    if not max_points or count <= max_points:
        with precision_scope(points.device, precision):
            loss, l1 = scene_loss(decoder, grid, points, sdf, band, code_reg)
        loss.backward()
        return l1.detach()
    with precision_scope(points.device, precision):  # the forward passes only, as autocast asks
        amps = decoder.amplitudes(grid.codes)
    table = amps.detach().requires_grad_()
    size = -(-count // -(-count // max_points))
    l1_sum = torch.zeros((), device=points.device)
    for start in range(0, count, size):
        rows = slice(start, start + size)
        code, local, weight, side = grid.corners(points[rows])
        with precision_scope(points.device, precision):
            pred = blend_tiles(decoder, code, local, weight, side, band, amps=table)
        l1 = clamped_l1(pred, sdf[rows] / grid.spec.cell, band) / count
        l1.backward()
        l1_sum += l1.detach()
    prior = grid.codes.pow(2).sum() / len(grid.codes)
    torch.autograd.backward([amps, code_reg * prior], [table.grad, None])
    return l1_sum


@contextlib.contextmanager
def precision_scope(device: torch.device, precision: str) -> Iterator[None]:
    """The arithmetic of a step's forward pass.

    ``fp32``: full float32. ``tf32``: float32 tensors with matrix products in
    TF32 on GPUs that have it. ``bf16``: autocast to bfloat16 (matrix products
    and the activations between them); the loss and the optimiser stay float32.
    """
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


def cosine_factor(progress: float, final_fraction: float) -> float:
    """Factor on the initial learning rate: cosine from 1 at progress 0 to ``final_fraction`` at progress 1."""
    progress = min(max(progress, 0.0), 1.0)
    return float(final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + np.cos(np.pi * progress)))


def cosine_lr(step: int, total: int, final_fraction: float) -> float:
    """:func:`cosine_factor` at step ``step`` of ``total``."""
    return cosine_factor(step / max(total, 1), final_fraction)
