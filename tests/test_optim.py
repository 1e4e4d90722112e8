"""``sdfkit.optim``: chunked backward equals one pass; the codes' Adam is torch's; the schedule's shape; forward
precision."""

from __future__ import annotations

import math

import pytest
import torch

from data_prep.errors import SdfkitError
from sdfkit.loss import clamped_l1_terms, scene_loss
from sdfkit.optim import CodeAdam, RunningAverage, backward_in_chunks, cosine_factor, cosine_lr, precision_scope
from sdfkit.scene import make_scene

from helpers import random_decoder, small_config, sphere_samples


def _grads(max_points: int | None) -> tuple[float, list[torch.Tensor]]:
    cfg = small_config(resolution=4)
    decoder = random_decoder(cfg)
    scene = make_scene(sphere_samples(900), cfg)
    with torch.no_grad():
        scene.grid.codes.normal_(0.0, 0.3)
    l1 = backward_in_chunks(decoder, scene.grid, scene.points, scene.sdf, 1.0, 1e-2, max_points)
    return float(l1), [scene.grid.codes.grad.clone()] + [p.grad.clone() for p in decoder.parameters()]


@pytest.mark.parametrize("max_points", [100, 333])
def test_chunked_backward_equals_one_pass(max_points):
    whole_l1, whole = _grads(None)
    chunked_l1, chunked = _grads(max_points)
    assert chunked_l1 == pytest.approx(whole_l1, rel=1e-5)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)


def test_code_adam_steps_as_torch_adam():
    # torch.optim.Adam is the reference: same gradients, a rate changed at every step (the cosine), a tensor
    # left without a gradient at one step; the codes must match bit for bit.
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(50, 8, generator=gen), torch.randn(7, generator=gen)]
    ours = [t.clone().requires_grad_() for t in start]
    theirs = [t.clone().requires_grad_() for t in start]
    adam, reference = CodeAdam(ours, lr=0.05), torch.optim.Adam(theirs, lr=0.05)
    for step in range(12):
        grads = [torch.randn(t.shape, generator=gen) * 10.0 ** (step % 3 - 1) for t in start]
        adam.lr = 0.05 * cosine_factor(step / 12, 0.1)
        for group in reference.param_groups:
            group["lr"] = adam.lr
        adam.zero_grad()
        reference.zero_grad(set_to_none=True)
        for mine, ref, g in zip(ours, theirs, grads):
            if not (step == 5 and mine.dim() == 1):
                mine.grad, ref.grad = g.clone(), g.clone()
        adam.step()
        reference.step()
        for mine, ref in zip(ours, theirs):
            assert torch.equal(mine.detach(), ref.detach()), f"step {step}"
    assert not torch.equal(ours[0].detach(), start[0])


@pytest.mark.parametrize("max_points", [None, 128])
def test_backward_in_chunks_matches_scene_loss(max_points):
    """The reference is plain autograd through :func:`scene_loss`, whose amplitudes are gathered in its graph."""
    cfg = small_config(resolution=4)
    decoder = random_decoder(cfg)
    scene = make_scene(sphere_samples(500), cfg)
    with torch.no_grad():
        scene.grid.codes.normal_(0.0, 0.3)
    total, expected = scene_loss(decoder, scene.grid, scene.points, scene.sdf, 1.0, 1e-2)
    total.backward()
    reference = [scene.grid.codes.grad.clone()] + [p.grad.clone() for p in decoder.parameters()]
    scene.grid.codes.grad = None
    decoder.zero_grad()
    l1 = backward_in_chunks(decoder, scene.grid, scene.points, scene.sdf, 1.0, 1e-2, max_points)
    assert float(l1) == pytest.approx(float(expected.detach()), rel=1e-6)
    got = [scene.grid.codes.grad] + [p.grad for p in decoder.parameters()]
    for a, b in zip(reference, got):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("max_points", [None, 128])
def test_a_weight_floor_keeps_the_loss_and_drops_the_light_rows_gradient(max_points):
    """The reference blends the 8 tiles row by row in plain autograd, each light row's value detached."""
    cfg = small_config(resolution=4)
    decoder = random_decoder(cfg)
    for p in decoder.parameters():
        p.requires_grad_(False)
    scene = make_scene(sphere_samples(500), cfg)
    with torch.no_grad():
        scene.grid.codes.normal_(0.0, 0.3)
    floor, band = 0.05, 1.0
    code, local, weight, side = scene.grid.corners(scene.points)
    amps = decoder.amplitudes(scene.grid.codes)  # (layers, T, hidden), in the graph
    rows = []
    for k in range(code.shape[1]):
        active = code[:, k] >= 0
        value = side[:, k] * band
        pred = decoder.synthesis(local[active, k], amps, code[active, k])
        value = value.masked_scatter(active, torch.where(weight[active, k] >= floor, pred, pred.detach()))
        rows.append(value * weight[:, k])
    blend = torch.stack(rows, dim=1).sum(dim=1)
    target = scene.sdf / scene.grid.spec.cell
    l1 = clamped_l1_terms(blend, target, band).mean()
    prior = scene.grid.codes.pow(2).sum() / len(scene.grid.codes)
    (l1 + 1e-2 * prior).backward()
    expected = scene.grid.codes.grad.clone()
    scene.grid.codes.grad = None
    got_l1 = backward_in_chunks(decoder, scene.grid, scene.points, scene.sdf, band, 1e-2, max_points,
                                weight_floor=floor)
    assert float(got_l1) == pytest.approx(float(l1.detach()), rel=1e-5)
    torch.testing.assert_close(scene.grid.codes.grad, expected, rtol=1e-4, atol=1e-7)
    # The floor did leave rows out: the full gradient differs.
    scene.grid.codes.grad = None
    backward_in_chunks(decoder, scene.grid, scene.points, scene.sdf, band, 1e-2, max_points)
    assert (weight < floor).float().mean() > 0.2
    assert not torch.allclose(scene.grid.codes.grad, expected, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9])
def test_running_average_is_the_step_by_step_mean(decay):
    """Against the plain recurrence: start at the first values, then a <- decay a + (1 - decay) x after each step."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(5, 4, generator=gen), torch.randn(3, generator=gen)]
    average = RunningAverage(params, decay)
    expected = [p.clone() for p in params]
    for _ in range(6):
        for p in params:
            p.add_(torch.randn(p.shape, generator=gen))
        average.update()
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, params)]
    last = [p.clone() for p in params]
    average.store()
    for p, e, x in zip(params, expected if decay else last, last):
        torch.testing.assert_close(p, e)
        assert decay == 0 or not torch.allclose(p, x)


def test_running_average_rejects_a_decay_outside_0_1():
    with pytest.raises(ValueError, match="decay"):
        RunningAverage([torch.zeros(2)], 1.0)


@pytest.mark.parametrize("final", [0.0, 0.05, 0.5])
def test_cosine_schedule(final):
    assert cosine_factor(0.0, final) == pytest.approx(1.0)
    assert cosine_factor(1.0, final) == pytest.approx(final)
    assert cosine_factor(0.5, final) == pytest.approx((1.0 + final) / 2)
    assert cosine_factor(0.25, final) == pytest.approx(final + (1 - final) * (1 + math.cos(math.pi / 4)) / 2)
    assert cosine_factor(-1.0, final) == cosine_factor(0.0, final) and cosine_factor(2.0, final) == cosine_factor(1.0, final)
    assert cosine_lr(30, 120, final) == pytest.approx(cosine_factor(0.25, final))
    rates = [cosine_lr(s, 50, final) for s in range(51)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_precision_scope():
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    device = torch.device("cpu")
    with precision_scope(device, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with precision_scope(device, "fp32"):
        assert (a @ b).dtype == torch.float32
    before = torch.get_float32_matmul_precision()
    with precision_scope(device, "tf32"):
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == before
    with pytest.raises(SdfkitError, match="unknown precision 'fp16'"):
        with precision_scope(device, "fp16"):
            pass


def test_scenes_in_one_batch_get_the_gradients_they_get_alone():
    """Two scenes of other sizes and grids in one call: each one's code gradient is its own single-scene one."""
    cfg = small_config(resolution=4)
    decoder = random_decoder(cfg)
    for p in decoder.parameters():
        p.requires_grad_(False)
    scenes = [make_scene(sphere_samples(n, seed=n), small_config(resolution=r)) for n, r in ((700, 4), (300, 6))]
    for scene in scenes:
        with torch.no_grad():
            scene.grid.codes.normal_(0.0, 0.3)
    alone = []
    for scene in scenes:
        l1 = backward_in_chunks(decoder, scene.grid, scene.points, scene.sdf, 1.0, 1e-2, 128)
        alone.append((float(l1), scene.grid.codes.grad.clone()))
        scene.grid.codes.grad = None
    both = backward_in_chunks(decoder, [s.grid for s in scenes], [s.points for s in scenes],
                              [s.sdf for s in scenes], 1.0, 1e-2, 128)
    assert float(both) == pytest.approx((alone[0][0] + alone[1][0]) / 2, rel=1e-5)
    for scene, (_, grad) in zip(scenes, alone):
        torch.testing.assert_close(scene.grid.codes.grad, grad, rtol=1e-4, atol=1e-8)
