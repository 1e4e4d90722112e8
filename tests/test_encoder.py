"""The code encoder: its lattice, its training rows, training through a frozen decoder, and fits that start from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sdfkit.config import EncoderConfig, EncoderModelConfig, EncoderTrainConfig, load_settings
from sdfkit.encoder import (
    CodeEncoder,
    cell_loss,
    cell_samples,
    initial_encoder,
    join_cells,
    lattice_points,
    load_encoder,
    load_encoder_config,
    save_encoder,
    tile_features,
    train_encoder,
    training_cells,
)
from sdfkit.errors import SdfkitError
from sdfkit.models.latent_grid import GridSpec, LatentGrid

REPO = Path(__file__).resolve().parents[1]


def _small_grid() -> LatentGrid:
    spec = GridSpec(origin=(-1.0, -1.0, -1.0), cell=0.5, cells=(4, 4, 4))
    active = np.zeros(spec.num_vertices, dtype=bool)
    active[[7, 31, 62, 100]] = True
    return LatentGrid(spec, active, np.ones(spec.num_vertices, dtype=np.float32), latent_dim=4)


def test_lattice_points_match_a_per_tile_loop():
    grid = _small_grid()
    points, index = lattice_points(grid, 5)
    assert len(points) == len(np.unique(np.round(points, 9), axis=0))  # each shared point once
    vertices = grid.spec.vertex_positions()[np.flatnonzero(grid.lookup.numpy() >= 0)]
    for t, vertex in enumerate(vertices):
        expected = [vertex + grid.spec.cell * np.array([i, j, k])
                    for i in np.linspace(-1, 1, 5) for j in np.linspace(-1, 1, 5) for k in np.linspace(-1, 1, 5)]
        np.testing.assert_allclose(points[index[t]], np.array(expected), atol=1e-12)


def test_the_shipped_encoder_config_loads_and_bad_lattices_are_one_line():
    cfg = load_encoder_config(REPO / "configs" / "encoder.yaml")
    assert cfg.model.lattice == 5 and cfg.train.val_data and cfg.train.cells_per_step > 0
    with pytest.raises(SdfkitError, match="odd and at least 3"):
        EncoderModelConfig(lattice=4)


def test_tile_features_are_clamped_cell_units_negative_inside():
    grid = _small_grid()
    cfg = EncoderModelConfig(lattice=3, clamp=1.5)
    sphere = lambda p: np.linalg.norm(p, axis=1) - 0.6  # noqa: E731  exact SDF of a sphere, negative inside
    features = tile_features(sphere, grid, cfg).numpy()
    points, index = lattice_points(grid, 3)
    expected = np.clip(sphere(points)[index] / grid.spec.cell, -1.5, 1.5)
    np.testing.assert_allclose(features, expected, rtol=1e-6)


def _scene(grid: LatentGrid, points: torch.Tensor):
    from sdfkit.scene import Scene

    return Scene("s", grid, points, points.norm(dim=1) - 0.6, normalization=None)


def test_cell_samples_group_every_sample_under_its_cells_corner_tiles():
    grid = _small_grid()
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    data = cell_samples(_scene(grid, points), torch.zeros(grid.num_codes, 27))
    code, local, _, side = grid.corners(points)
    kept = (code >= 0).any(dim=1)
    assert int(data.ptr[-1]) == int(kept.sum())  # samples of cells without a code are left out
    seen = 0
    for c in range(data.num_cells):
        rows = slice(int(data.ptr[c]), int(data.ptr[c + 1]))
        for frac, target in zip(data.frac[rows], data.target[rows]):
            # The point this row came from, found by a loop: same corner tiles and sides, same target.
            i = int(torch.argmin((local[:, 0] - frac).abs().sum(dim=1)))
            assert torch.equal(code[i], data.tiles[c]) and torch.equal(side[i], data.side[c])
            assert float(target) == pytest.approx(float(points[i].norm() - 0.6) / grid.spec.cell, rel=1e-6)
            seen += 1
    assert seen == int(kept.sum())


def test_cell_loss_is_the_blended_fitting_loss_of_the_encoded_codes():
    """One sample per cell: every draw picks it, so the loss must equal scene_loss with the encoder's codes."""
    from sdfkit.loss import scene_loss
    from sdfkit.models.siren import ModulatedSiren

    grid = _small_grid()
    base = torch.tensor([[i, j, k] for i in range(4) for j in range(4) for k in range(4)], dtype=torch.float32)
    jitter = torch.rand(len(base), 3, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    points = torch.tensor(grid.spec.origin) + (base + jitter) * grid.spec.cell
    scene = _scene(grid, points)
    features = torch.randn(grid.num_codes, 27, generator=torch.Generator().manual_seed(2))
    data = join_cells([cell_samples(scene, features)])
    torch.manual_seed(0)
    decoder = ModulatedSiren(hidden=16, layers=2, latent_dim=4)
    encoder = CodeEncoder(EncoderModelConfig(lattice=3, hidden=8, layers=2), latent_dim=4)
    _, l1 = cell_loss(decoder, encoder, data, torch.arange(data.num_cells), 1, 1.0, 0.0, torch.Generator())
    with torch.no_grad():
        grid.codes.copy_(encoder(features))
    keep = (grid.corners(points)[0] >= 0).any(dim=1)
    _, expected = scene_loss(decoder, grid, points[keep], scene.sdf[keep], 1.0, 0.0)
    assert float(l1.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


@pytest.fixture(scope="module")
def tiny_decoder(shared_meshes, tmp_path_factory):
    from sdfkit.train import train

    cfg = load_settings(REPO / "configs" / "tiny.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=[str(shared_meshes / "val" / "torus.obj")]))
    out = tmp_path_factory.mktemp("decoder")
    train(cfg, out, device="cpu", progress=False)
    return out / "decoder.pt"


@pytest.fixture(scope="module")
def tiny_encoder(tiny_decoder, shared_meshes, tmp_path_factory):
    from sdfkit.decoder_io import load_decoder

    decoder, dec_cfg, _ = load_decoder(tiny_decoder)
    cfg = EncoderConfig(model=EncoderModelConfig(lattice=3, hidden=32, layers=2),
                        train=EncoderTrainConfig(data=[str(shared_meshes / "val" / "torus.obj")], num_points=20000,
                                                 steps=60, cells_per_step=256, samples_per_cell=8, lr=1e-2))
    data = training_cells(cfg, dec_cfg, log=lambda _: None)
    encoder, summary = train_encoder(decoder, dec_cfg, cfg, data, log=lambda _: None)
    path = tmp_path_factory.mktemp("encoder") / "encoder.pt"
    save_encoder(path, encoder, cfg, decoder, **summary)
    return path, summary


def test_a_tiny_encoder_trains_and_fits_a_real_mesh_end_to_end(tiny_decoder, tiny_encoder, shared_meshes, tmp_path):
    """Encoder trained through the tiny decoder; its codes beat noise, and a fit through it writes a mesh."""
    from data_prep.mesh import load_mesh
    from data_prep.sdf import MeshSDF
    from sdfkit.code_init import encoder_codes
    from sdfkit.decoder_io import load_decoder
    from sdfkit.encoder import sample_l1
    from sdfkit.fit import FitRequest, fit_mesh
    from sdfkit.samples import load_or_prepare
    from sdfkit.scene import make_scene

    path, summary = tiny_encoder
    assert summary["steps"] == 60 and np.isfinite(summary["final_l1_cells"])
    torus = shared_meshes / "val" / "torus.obj"
    decoder, cfg, dec_id = load_decoder(tiny_decoder)
    samples = load_or_prepare(torus, cfg.sampling, seed=0)
    scene = make_scene(samples, cfg, name="torus")
    noise_l1 = sample_l1(decoder, scene, cfg.loss.band)
    unit = load_mesh(torus)
    unit.vertices = samples.normalization.to_unit(unit.vertices)
    with torch.no_grad():
        scene.grid.codes.copy_(encoder_codes(scene, dec_id, MeshSDF(unit), str(path)))
    assert sample_l1(decoder, scene, cfg.loss.band) < 0.9 * noise_l1

    opts = FitRequest(decoder=str(tiny_decoder), encoder=str(path), steps=15, resolution=48, device="cpu",
                      preview=False)
    report = fit_mesh(torus, tmp_path / "fit", opts, progress=False).report
    assert report["init"] == "encoder" and report["steps"] == 15 and "init" in report["seconds"]
    assert report["refinement"]["end_l1"] <= report["refinement"]["start_l1"]
    assert sorted(p.name for p in (tmp_path / "fit").iterdir()) == ["latents.pt", "mesh.obj", "report.json"]


def test_an_encoder_for_another_decoder_is_refused_in_one_line(tiny_encoder, shared_meshes, tmp_path):
    from sdfkit.fit import FitRequest, fit_mesh

    path, _ = tiny_encoder
    with pytest.raises(SdfkitError, match="trained for decoder"):
        fit_mesh(shared_meshes / "val" / "torus.obj", tmp_path / "x",
                 FitRequest(init="encoder", encoder=str(path), steps=0, resolution=32, device="cpu", preview=False),
                 progress=False)
    assert not (tmp_path / "x").exists()


def test_refinement_that_ends_worse_gives_back_the_start(tiny_decoder, tiny_encoder, shared_meshes):
    from sdfkit.code_init import refine_no_worse
    from sdfkit.decoder_io import load_decoder
    from sdfkit.samples import load_or_prepare
    from sdfkit.scene import make_scene

    decoder, cfg, _ = load_decoder(tiny_decoder)
    samples = load_or_prepare(shared_meshes / "val" / "torus.obj", cfg.sampling, seed=0)
    scene = make_scene(samples, cfg, name="torus")
    start = scene.grid.codes.detach().clone()

    def worse():
        with torch.no_grad():
            scene.grid.codes.add_(torch.randn_like(scene.grid.codes))
        return 1, float("nan")

    _, _, (info,) = refine_no_worse(decoder, scene, cfg, worse)
    assert info["kept"] == "start" and info["end_l1"] > info["start_l1"]
    assert torch.equal(scene.grid.codes.detach(), start)


def test_training_can_start_from_an_encoder_file_of_the_same_network_and_decoder(tiny_encoder, tiny_decoder,
                                                                                  shared_meshes):
    from sdfkit.decoder_io import load_decoder

    path, _ = tiny_encoder
    decoder, dec_cfg, _ = load_decoder(tiny_decoder)
    start, _ = load_encoder(path)
    train = EncoderTrainConfig(data=[str(shared_meshes / "val" / "torus.obj")], num_points=5000, steps=1,
                               cells_per_step=16, samples_per_cell=2, lr=1e-9, init=str(path))
    cfg = EncoderConfig(model=start.cfg, train=train)
    data = training_cells(cfg, dec_cfg, log=lambda _: None)
    tuned, _ = train_encoder(decoder, dec_cfg, cfg, data, log=lambda _: None)
    # One step at a vanishing rate: the weights are the file's (from random weights they would not be).
    for name, value in start.state_dict().items():
        assert torch.allclose(tuned.state_dict()[name], value, atol=1e-6), name
    other = dataclasses.replace(cfg, model=dataclasses.replace(start.cfg, clamp=start.cfg.clamp + 1))
    with pytest.raises(SdfkitError, match="has model"):
        train_encoder(decoder, dec_cfg, other, data, log=lambda _: None)
    shipped, shipped_cfg, _ = load_decoder(None)
    with pytest.raises(SdfkitError, match="another decoder"):
        train_encoder(shipped, shipped_cfg, cfg, data, log=lambda _: None)


def test_encoder_files_load_weights_only_and_reject_other_files(tiny_encoder, tiny_decoder):
    path, _ = tiny_encoder
    encoder, serves = load_encoder(path)
    assert isinstance(encoder, CodeEncoder) and len(serves) == 16
    with pytest.raises(SdfkitError, match="not an encoder"):
        load_encoder(tiny_decoder)


def test_fit_warns_in_one_line_when_the_fitted_iou_is_low(tiny_decoder, shared_meshes, tmp_path):
    from typer.testing import CliRunner

    from sdfkit.cli import app

    result = CliRunner().invoke(app, ["fit", str(shared_meshes / "val" / "torus.obj"), "--out", str(tmp_path / "o"),
                                      "--decoder", str(tiny_decoder), "--init", "random", "--steps", "15",
                                      "--resolution", "32", "--no-preview", "--quiet"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "IoU" in warnings[0]


def test_train_encoder_refuses_a_bad_init_file_in_one_line_before_sampling(shared_meshes, tmp_path):
    import subprocess
    import sys

    import yaml

    config = tmp_path / "encoder.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"train": {"data": [str(shared_meshes / "val" / "torus.obj")],
                                                            "init": str(tmp_path / "missing.pt")}}}))
    out = tmp_path / "encoder.pt"
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "train-encoder", str(config), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.startswith("error:") and "missing.pt" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "tiles," not in proc.stderr  # no mesh was sampled ("NAME: N tiles, ...")
    assert not out.exists()


def test_random_encoder_weights_come_from_the_train_seed_alone():
    from sdfkit.models.siren import ModulatedSiren

    decoder = ModulatedSiren(hidden=16, layers=2, latent_dim=8)
    cfg = EncoderConfig(model=EncoderModelConfig(lattice=3, hidden=16, layers=2), train=EncoderTrainConfig(seed=3))
    first = initial_encoder(cfg, decoder, 8)
    torch.rand(1000)  # the global generator moves on, as the CLI's work before training moves it
    again = initial_encoder(cfg, decoder, 8)
    torch.manual_seed(3)
    reference = CodeEncoder(cfg.model, 8)  # seed, then build: what training from random weights has always done
    for a, b, c in zip(first.state_dict().values(), again.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c)
    other = initial_encoder(dataclasses.replace(cfg, train=EncoderTrainConfig(seed=4)), decoder, 8)
    assert not all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), other.state_dict().values()))
