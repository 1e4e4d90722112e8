"""``sdfkit.loss``: the clamped L1 against a per-element loop, and several scenes in one pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import random_decoder, small_config, sphere_samples
from sdfkit.loss import clamped_l1, scene_loss
from sdfkit.models.latent_grid import blend_tiles
from sdfkit.scene import make_scene


def clamped_l1_loop(pred: list[float], target: list[float], band: float) -> float:
    """The loss one element at a time: DeepSDF's clamp, except a prediction out on the wrong side is pulled back."""
    total = 0.0
    for p, t in zip(pred, target):
        goal = min(max(t, -band), band)
        if (t >= band and p >= band) or (t <= -band and p <= -band):
            continue  # both beyond the band on the same side: nothing to learn
        total += abs(p - goal)
    return total


@pytest.mark.parametrize("band", [0.5, 1.0, 3.0])
def test_clamped_l1_matches_the_loop(band):
    rng = np.random.default_rng(1)
    pred, target = rng.uniform(-5, 5, 500), rng.uniform(-5, 5, 500)
    got = clamped_l1(torch.tensor(pred), torch.tensor(target), band)
    assert float(got) == pytest.approx(clamped_l1_loop(pred.tolist(), target.tolist(), band), rel=1e-12)


def test_clamped_l1_pulls_back_a_prediction_beyond_the_band_on_the_wrong_side():
    pred = torch.tensor([-4.0], requires_grad=True)
    clamped_l1(pred, torch.tensor([4.0]), 1.0).backward()
    assert pred.grad is not None and float(pred.grad) == -1.0
    settled = torch.tensor([4.0], requires_grad=True)
    loss = clamped_l1(settled, torch.tensor([5.0]), 1.0)
    loss.backward()
    assert float(loss) == 0.0 and float(settled.grad) == 0.0


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
        expected_l1 += float(clamped_l1(pred, s.sdf / s.grid.spec.cell, band))
    count = sum(len(s.points) for s in scenes)
    codes = torch.cat([s.grid.codes for s in scenes])
    assert float(l1) == pytest.approx(expected_l1 / count, rel=1e-5)
    assert float(total) == pytest.approx(expected_l1 / count + reg * float(codes.pow(2).sum()) / len(codes), rel=1e-5)
