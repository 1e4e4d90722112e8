"""Where a fit's codes start, and a refinement that never ends worse than its start.

``encoder``: every active tile's code from :mod:`sdfkit.encoder` in one pass over
the tile's exact SDF lattice, then a few Adam steps with the decoder frozen.
``random``: the auto-decoder's way, codes from N(0, init_std^2) and the full
number of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from sdfkit.config import SdfkitConfig
from sdfkit.encoder import SHIPPED_ENCODER, encode_codes, load_encoder, sample_l1, tile_features
from sdfkit.errors import SdfkitError
from sdfkit.models.siren import ModulatedSiren
from sdfkit.scene import Scene

INITS = ("auto", "encoder", "random")


def check_init(init: str) -> str:
    if init not in INITS:
        raise SdfkitError(f"unknown --init '{init}' (use {', '.join(INITS)})")
    return init


def resolve_init(init: str, dec_id: str | None, encoder_path: str | None = None) -> str:
    """``auto`` -> ``encoder`` when the encoder (the shipped one by default) serves decoder ``dec_id``,
    else ``random``."""
    if init != "auto" or encoder_path is not None:  # an encoder named by the user must serve: errors surface
        return "encoder" if init == "auto" else init
    if dec_id is None or not SHIPPED_ENCODER.is_file():
        return "random"
    try:
        _, serves = load_encoder(SHIPPED_ENCODER)
    except SdfkitError:
        return "random"
    return "encoder" if serves == dec_id else "random"


def encoder_codes(
    scene: Scene, dec_id: str, sdf: Callable[[np.ndarray], np.ndarray], encoder_path: str | None = None,
) -> torch.Tensor:
    """(T, latent_dim) codes for ``scene``'s active tiles from an encoder (the shipped one by default).

    sdf : the exact signed distance (negative inside) of the input in the scene's unit frame.
    The encoder must have been trained for the decoder named ``dec_id``.
    """
    path = encoder_path
    if path is None and not SHIPPED_ENCODER.is_file():
        raise SdfkitError(f"the shipped encoder is missing from the installation ({SHIPPED_ENCODER}); "
                          "use --init random")
    encoder, serves = load_encoder(path)
    if serves != dec_id:
        where = path or "the shipped encoder"
        raise SdfkitError(f"{where} was trained for decoder {serves}, not for {dec_id}; use --init random "
                          "or an encoder trained with sdfkit train-encoder for this decoder")
    if encoder.latent_dim != scene.grid.codes.shape[1]:
        raise SdfkitError("the encoder's code size does not match the decoder's")
    features = tile_features(sdf, scene.grid, encoder.cfg)
    return encode_codes(encoder, features).to(scene.grid.codes.device)


def refine_no_worse(
    decoder: ModulatedSiren, scene: Scene | Sequence[Scene], cfg: SdfkitConfig, run: Callable[[], tuple[int, float]],
) -> tuple[int, float, list[dict]]:
    """Run ``run`` (the refinement, which updates the scenes' codes) and keep each scene's codes only if better.

    Both code tables of a scene are scored by :func:`sdfkit.encoder.sample_l1` on the same fixed draw of
    samples, drawn as the refinement's batches are (``fit.surface_fraction``); when the refinement scored worse
    (a time budget cut it short while its learning rate was still high), the starting codes come back, so a
    budget never leaves a worse field than the start.
    Returns (steps, last batch L1, per scene {"start_l1", "end_l1", "kept"}).
    """
    scenes = [scene] if isinstance(scene, Scene) else list(scene)

    def score(s: Scene) -> float:
        return sample_l1(decoder, s, cfg.loss.band, seed=cfg.fit.seed, surface_fraction=cfg.fit.surface_fraction,
                         surface_band=cfg.fit.surface_band)

    starts = [s.grid.codes.detach().clone() for s in scenes]
    start_l1 = [score(s) for s in scenes]
    steps, l1 = run()
    outcomes = []
    for s, start, before in zip(scenes, starts, start_l1):
        after = score(s)
        kept = "refined"
        if not after <= before:
            with torch.no_grad():
                s.grid.codes.copy_(start)
            kept = "start"
        outcomes.append({"start_l1": round(before, 6), "end_l1": round(after, 6), "kept": kept})
    return steps, l1, outcomes
