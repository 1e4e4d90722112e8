"""``sdfkit.fit_output``: what a fit writes is what it reads back, and foreign files are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data_prep.errors import SdfkitError
from data_prep.mesh import Normalization
from sdfkit.decoder_io import decoder_id, save_decoder
from sdfkit.field import NeuralField
from sdfkit.fit_output import LATENTS, REPORT, load_fitted, mesh_file_name, write_latents, write_report
from sdfkit.io import load_torch, save_torch
from sdfkit.scene import grid_for_samples

from helpers import random_decoder, small_config, sphere_samples


def _write(folder, codes_scale: float = 0.3):
    cfg = small_config(resolution=5)
    decoder = random_decoder(cfg)
    grid = grid_for_samples(sphere_samples(800), cfg)
    with torch.no_grad():
        grid.codes.normal_(0.0, codes_scale)
    norm = Normalization(center=(1.0, 2.0, 3.0), scale=0.25)
    folder.mkdir()
    support = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    write_latents(folder / LATENTS, decoder, cfg, grid, norm, folder / "in.obj", "abc123", mesh_file_name("ply"),
                  support)
    write_report(folder / REPORT, {"steps": 3, "metrics": {"iou": 0.5}})
    return NeuralField(decoder, grid, cfg.loss.band), norm, decoder


def test_a_fit_output_reads_back_as_written(tmp_path):
    field, norm, decoder = _write(tmp_path / "out")
    fitted = load_fitted(tmp_path / "out")
    points = np.random.default_rng(0).uniform(-1, 1, size=(300, 3)).astype(np.float32)
    np.testing.assert_allclose(fitted.field(points), field(points), rtol=1e-6, atol=1e-7)
    assert fitted.normalization == norm and fitted.decoder_id == decoder_id(decoder)
    assert fitted.mesh_path == tmp_path / "out" / "mesh.ply" and fitted.source == (tmp_path / "out" / "in.obj").resolve()
    assert fitted.report == {"steps": 3, "metrics": {"iou": 0.5}}
    assert fitted.support is not None
    np.testing.assert_array_equal(fitted.support, np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32))
    assert json.loads((tmp_path / "out" / REPORT).read_text()) == fitted.report
    # The latents file itself is accepted too.
    np.testing.assert_allclose(load_fitted(tmp_path / "out" / LATENTS).field(points), field(points), rtol=1e-6)


def test_foreign_or_damaged_outputs_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SdfkitError, match="not a fit output"):
        load_fitted(tmp_path / "empty")
    with pytest.raises(SdfkitError, match="not found"):
        load_fitted(tmp_path / "missing")
    cfg = small_config()
    save_decoder(tmp_path / "decoder.pt", random_decoder(cfg), cfg)
    with pytest.raises(SdfkitError, match="not a latents file"):
        load_fitted(tmp_path / "decoder.pt")
    _write(tmp_path / "out")
    payload = load_torch(tmp_path / "out" / LATENTS)
    payload["grid"]["codes"][0, 0] = float("nan")
    save_torch(payload, tmp_path / "out" / LATENTS)
    with pytest.raises(SdfkitError, match="NaN or infinite latent codes"):
        load_fitted(tmp_path / "out")
    payload["grid"]["codes"][0, 0] = 0.0
    for bad in (torch.zeros(4, 2), torch.full((4, 3), float("nan")), "points"):
        save_torch({**payload, "support": bad}, tmp_path / "out" / LATENTS)
        with pytest.raises(SdfkitError, match="invalid surface points"):
            load_fitted(tmp_path / "out")
    del payload["band"]
    save_torch(payload, tmp_path / "out" / LATENTS)
    with pytest.raises(SdfkitError, match="lacks 'band'"):
        load_fitted(tmp_path / "out")
