"""Decoders: the modulated SIREN (:mod:`sdfkit.models.siren`), baselines, and the latent grid."""

from __future__ import annotations

from data_prep.errors import SdfkitError
from sdfkit.config import ModelConfig
from sdfkit.models import baselines
from sdfkit.models.siren import ModulatedSiren


def make_decoder(cfg: ModelConfig) -> ModulatedSiren:
    """The decoder ``cfg.kind`` names: the modulated SIREN or a baseline (``sdfkit.models.baselines``)."""
    if cfg.kind == "modulated_siren":
        return ModulatedSiren(in_dim=3, hidden=cfg.hidden, layers=cfg.layers, latent_dim=cfg.latent_dim, w0=cfg.w0)
    if cfg.kind == "relu_concat":
        return baselines.ReluConcatDecoder(3, cfg.hidden, cfg.layers, cfg.latent_dim, cfg.skip_layer)  # type: ignore[return-value]
    if cfg.kind == "siren_concat":
        return baselines.SirenConcatDecoder(3, cfg.hidden, cfg.layers, cfg.latent_dim, cfg.w0)  # type: ignore[return-value]
    if cfg.kind == "fourier_concat":
        return baselines.FourierConcatDecoder(3, cfg.hidden, cfg.layers, cfg.latent_dim, cfg.fourier_features,  # type: ignore[return-value]
                                              cfg.fourier_scale)
    raise SdfkitError(f"unknown model.kind '{cfg.kind}'")
