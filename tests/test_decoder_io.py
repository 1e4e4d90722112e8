"""``sdfkit.decoder_io``: decoder files round-trip, are named by their weights, and bad ones are one line."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from data_prep.errors import SdfkitError
from sdfkit.config import ModelConfig
from sdfkit.decoder_io import decoder_id, load_decoder, save_decoder
from sdfkit.io import load_torch, save_torch

from helpers import random_decoder, small_config


@pytest.mark.parametrize("kind", ["modulated_siren", "relu_concat", "siren_concat", "fourier_concat"])
def test_a_decoder_file_round_trips(tmp_path, kind):
    cfg = small_config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind=kind))
    decoder = random_decoder(cfg)
    ident = save_decoder(tmp_path / "d.pt", decoder, cfg, steps=3)
    again, cfg_again, ident_again = load_decoder(tmp_path / "d.pt")
    assert type(again) is type(decoder) and cfg_again == cfg and ident_again == ident == decoder_id(decoder)
    for (name, a), (_, b) in zip(sorted(decoder.state_dict().items()), sorted(again.state_dict().items())):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)
    assert load_torch(tmp_path / "d.pt")["info"] == {"steps": 3}


def test_the_id_follows_the_weights():
    decoder = random_decoder(small_config())
    before = decoder_id(decoder)
    assert decoder_id(decoder) == before
    with torch.no_grad():
        next(decoder.parameters()).view(-1)[0] += 1e-3
    assert decoder_id(decoder) != before


def test_a_training_checkpoint_serves_as_a_decoder(tmp_path):
    cfg = small_config()
    decoder = random_decoder(cfg)
    save_decoder(tmp_path / "d.pt", decoder, cfg)
    save_torch({"sdfkit": {"kind": "train_checkpoint", "version": 1}, "decoder": load_torch(tmp_path / "d.pt")},
               tmp_path / "ckpt.pt")
    assert load_decoder(tmp_path / "ckpt.pt")[2] == decoder_id(decoder)


def test_bad_decoder_files_are_one_line(tmp_path):
    cfg = small_config()
    save_torch({"sdfkit": {"kind": "latents", "version": 1}}, tmp_path / "latents.pt")
    with pytest.raises(SdfkitError, match="is not a decoder file .*latents"):
        load_decoder(tmp_path / "latents.pt")
    save_decoder(tmp_path / "d.pt", random_decoder(cfg), cfg)
    payload = load_torch(tmp_path / "d.pt")
    payload["config"]["model"] = dataclasses.asdict(ModelConfig(hidden=32, layers=2, latent_dim=8))
    save_torch(payload, tmp_path / "mismatched.pt")
    with pytest.raises(SdfkitError, match="not a valid sdfkit decoder"):
        load_decoder(tmp_path / "mismatched.pt")
    with pytest.raises(SdfkitError, match="decoder not found"):
        load_decoder(tmp_path / "missing.pt")


def test_a_file_holding_an_encoder_section_of_another_day_still_loads(tmp_path):
    """Fit outputs and decoders written before the encoder's training keys changed hold them; a decoder's
    settings do not include the encoder's, so those keys are neither read nor written."""
    cfg = small_config()
    decoder = random_decoder(cfg)
    save_decoder(tmp_path / "d.pt", decoder, cfg)
    payload = load_torch(tmp_path / "d.pt")
    assert "encoder" not in payload["config"]
    payload["config"]["encoder"] = {"train": {"tiles_per_step": 2048, "rows_per_tile": 32}}
    save_torch(payload, tmp_path / "old.pt")
    _, again, _ = load_decoder(tmp_path / "old.pt")
    assert again.model == cfg.model and again.grid == cfg.grid
