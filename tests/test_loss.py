"""``sdfkit.loss``: the clamped L1 against a per-element reference, and several scenes in one pass."""

from __future__ import annotations

import pytest
import torch

from sdfkit.loss import clamped_l1, scene_loss
from sdfkit.models.latent_grid import blend_tiles
from sdfkit.scene import make_scene

from helpers import random_decoder, small_config, sphere_samples


def reference_clamped_l1(pred: list[float], target: list[float], band: float) -> float:
    """DeepSDF's clamped L1 point by point, except where only the prediction lies beyond the band."""
    total = 0.0
    for p, t in zip(pred, target):
        if (t >= band and p >= band) or (t <= -band and p <= -band):
            continue  # both beyond the band on one side: nothing to learn
        total += abs(p - min(max(t, -band), band))
    return total


def test_clamped_l1_matches_its_reference_and_deepsdf_within_the_band():
    gen, band = torch.Generator().manual_seed(0), 0.05
    pred, target = torch.randn(2000, generator=gen) * 0.1, torch.randn(2000, generator=gen) * 0.1
    expected = reference_clamped_l1(pred.tolist(), target.tolist(), band)
    assert clamped_l1(pred, target, band).item() == pytest.approx(expected, rel=1e-5)
    within = pred.abs() < band
    deepsdf = (pred.clamp(-band, band) - target.clamp(-band, band)).abs()[within].sum()
    assert clamped_l1(pred[within], target[within], band).item() == pytest.approx(deepsdf.item(), rel=1e-5)


def test_clamped_l1_pulls_back_a_prediction_beyond_the_band():
    # Beyond the band with the target inside it, or beyond it on the other side: pulled back. Beyond it on the
    # target's own side: settled, whichever side.
    pred = torch.tensor([0.2, 0.2, -0.2, 0.2, -0.2], requires_grad=True)
    target = torch.tensor([0.01, -0.3, 0.02, 0.3, -0.3])
    clamped_l1(pred, target, 0.05).backward()
    assert pred.grad.tolist() == [1.0, 1.0, -1.0, 0.0, 0.0]


def test_two_scenes_in_one_pass_equal_the_scenes_apart():
    """The concatenated code table and offset tile indices give each scene its own codes."""
    cfg = small_config(resolution=4)
    decoder = random_decoder(cfg)
    scenes = [make_scene(sphere_samples(600, radius=r, seed=i), cfg, seed=i) for i, r in enumerate((0.5, 0.3))]
    with torch.no_grad():
        for s in scenes:
            s.grid.codes.normal_(0.0, 0.3)
    band, reg = 1.0, 1e-2
    total, l1 = scene_loss(decoder, [s.grid for s in scenes], [s.points for s in scenes], [s.sdf for s in scenes],
                           band, reg)
    expected_l1 = 0.0
    for s in scenes:
        pred = blend_tiles(decoder, *s.grid.corners(s.points), band, codes=s.grid.codes)
        expected_l1 += float(clamped_l1(pred, s.sdf / s.grid.spec.cell, band).detach())
    count = sum(len(s.points) for s in scenes)
    codes = torch.cat([s.grid.codes for s in scenes])
    prior = float(codes.detach().pow(2).sum()) / len(codes)
    assert float(l1.detach()) == pytest.approx(expected_l1 / count, rel=1e-5)
    assert float(total.detach()) == pytest.approx(expected_l1 / count + reg * prior, rel=1e-5)
