"""Loss terms a point cloud adds to a fit: normal alignment and the Eikonal term at the cloud's points.

The fit's main loss (the clamped L1 of :func:`sdfkit.loss.scene_loss`) already holds the on-surface zero
level: a share of a cloud's samples lie on its points with distance 0 (``data_prep.points``). These terms use the
field's gradient with respect to the query point, through the decoder and the tiles' blending:

- normal alignment: ``1 - cos(grad f(p), n_p)`` at cloud points p with normals n_p;
- Eikonal: ``| |grad f(p)| - 1 |`` at the same points (the field is a distance there).

Gradients are taken in the unit frame (the prediction in cell units times the cell size).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from sdfkit.models.latent_grid import LatentGrid, blend_tiles
from sdfkit.models.siren import ModulatedSiren


@dataclasses.dataclass(frozen=True)
class SurfaceWeights:
    """Weights of the point-cloud terms against the clamped L1 (in cell units); 0 turns a term off."""

    normal: float = 0.0
    eikonal: float = 0.0
    points: int = 4096
    """Cloud points per step."""
    every: int = 1
    """Steps between two takings of the terms, which then weigh this many times as much."""

    @property
    def active(self) -> bool:
        return self.normal > 0 or self.eikonal > 0


def surface_terms(decoder: ModulatedSiren, grid: LatentGrid, points: Tensor, normals: Tensor,
                  band: float) -> tuple[Tensor, Tensor]:
    """(normal alignment, Eikonal) means over (B, 3) unit-frame ``points`` with (B, 3) unit ``normals``."""
    x = points.detach().clone().requires_grad_(True)
    code, local, weight, side = grid.corners(x)
    pred = blend_tiles(decoder, code, local, weight, side, band, codes=grid.codes)
    (grad,) = torch.autograd.grad(pred.sum(), x, create_graph=True)
    grad = grad * grid.spec.cell
    alignment = (1.0 - torch.nn.functional.cosine_similarity(grad, normals, dim=-1)).mean()
    eikonal = (grad.norm(dim=-1) - 1.0).abs().mean()
    return alignment, eikonal


def surface_loss(decoder: ModulatedSiren, grid: LatentGrid, points: Tensor, normals: Tensor, band: float,
                 weights: SurfaceWeights, seed: int = 0) -> Callable[[], Tensor | None]:
    """A per-step loss for :func:`sdfkit.fit.fit_codes`: the weighted terms at ``weights.points`` random points,
    every ``weights.every`` steps from the first (None on the steps between)."""
    gen = torch.Generator(device=points.device).manual_seed(seed + 1)
    calls = [0]

    def loss() -> Tensor | None:
        calls[0] += 1
        if (calls[0] - 1) % weights.every:
            return None
        idx = torch.randint(len(points), (min(weights.points, len(points)),), generator=gen, device=points.device)
        alignment, eikonal = surface_terms(decoder, grid, points[idx], normals[idx], band)
        return weights.every * (weights.normal * alignment + weights.eikonal * eikonal)

    return loss


def cloud_weights(normals_source: str, normal_weight: float, normal_points: int, every: int = 1) -> SurfaceWeights:
    """The terms a cloud's fit adds: normal alignment at ``normal_weight`` (``fit.normal_weight``) every ``every``
    steps when its normals came with the file, nothing when they were estimated (not measured)."""
    if normals_source != "given":
        return SurfaceWeights()
    return SurfaceWeights(normal=normal_weight, points=normal_points, every=every)


def cloud_loss(decoder: ModulatedSiren, grid: LatentGrid, surface_points, surface_normals, weights: SurfaceWeights,
               band: float, seed: int = 0) -> Callable[[], Tensor | None] | None:
    """The extra loss of a cloud's fit (:func:`cloud_weights`), or None when it adds no term.

    surface_points, surface_normals : (m, 3) float arrays in the unit frame (the samples' ``surface_*``).
    """
    if not weights.active:
        return None
    device = grid.codes.device
    points = torch.as_tensor(surface_points, dtype=torch.float32, device=device)
    normals = torch.as_tensor(surface_normals, dtype=torch.float32, device=device)
    return surface_loss(decoder, grid, points, normals, band, weights, seed)


def describe_cloud_loss(weights: SurfaceWeights) -> str:
    """The loss a cloud's fit uses, in words, for ``report.json``."""
    if weights.active:
        when = "a step" if weights.every == 1 else f"every {weights.every} steps, times {weights.every}"
        return (f"clamped L1 (10% of near-surface samples on the points) + {weights.normal:g} x normal "
                f"alignment + {weights.eikonal:g} x Eikonal at {weights.points} points {when}")
    return "clamped L1 (10% of near-surface samples on the points)"
