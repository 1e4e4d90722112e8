"""Decoder files: the trained weights with the settings they were trained with.

A decoder file holds state dicts and plain data only and loads with
``torch.load(..., weights_only=True)``. The package ships one
(``sdfkit/pretrained/decoder.pt``) so ``sdfkit fit`` works with no download.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from data_prep.yaml_io import to_dict
from sdfkit.config import SdfkitConfig, settings_from_dict
from sdfkit.errors import SdfkitError
from sdfkit.io import load_torch, save_torch
from sdfkit.models import make_decoder
from sdfkit.models.siren import ModulatedSiren

#: The decoder that ships inside the package.
SHIPPED_DECODER = Path(__file__).resolve().parent / "pretrained" / "decoder.pt"
FORMAT_VERSION = 1
#: Config sections that are not a decoder's settings: neither written with one nor read back (files written before
#: this rule hold the encoder section of their day, whose keys may since have changed).
NOT_DECODER_SETTINGS = ("encoder",)


def decoder_id(decoder: ModulatedSiren) -> str:
    """Short content hash of the decoder's weights: names the decoder a fit belongs to."""
    digest = hashlib.sha256()
    for name, tensor in sorted(decoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def decoder_payload(decoder: ModulatedSiren, cfg: SdfkitConfig, **info) -> dict:
    """Plain-data description of a decoder (also embedded in fit outputs)."""
    return {
        "sdfkit": {"kind": "decoder", "version": FORMAT_VERSION},
        "decoder_id": decoder_id(decoder),
        "config": {k: v for k, v in to_dict(cfg).items() if k not in NOT_DECODER_SETTINGS},
        "state_dict": {k: v.detach().cpu() for k, v in decoder.state_dict().items()},
        "info": info,
    }


def save_decoder(path: str | Path, decoder: ModulatedSiren, cfg: SdfkitConfig, **info) -> str:
    """Write a decoder file atomically; returns its decoder id."""
    payload = decoder_payload(decoder, cfg, **info)
    save_torch(payload, path)
    return payload["decoder_id"]


def decoder_from_payload(payload: dict, source: str) -> tuple[ModulatedSiren, SdfkitConfig, str]:
    """Rebuild (decoder, settings, decoder id) from :func:`decoder_payload`'s output."""
    try:
        cfg = settings_from_dict({k: v for k, v in payload["config"].items() if k not in NOT_DECODER_SETTINGS})
        decoder = make_decoder(cfg.model)
        decoder.load_state_dict(payload["state_dict"])
        ident = str(payload["decoder_id"])
    except SdfkitError as exc:
        raise SdfkitError(f"{source}: {exc}") from None
    except (KeyError, TypeError, RuntimeError, ValueError):
        raise SdfkitError(f"{source} is not a valid sdfkit decoder (missing or mismatched weights)") from None
    return decoder, cfg, ident


def load_decoder(path: str | Path | None = None) -> tuple[ModulatedSiren, SdfkitConfig, str]:
    """Load a decoder file (the shipped one when ``path`` is None)."""
    path = Path(path) if path is not None else SHIPPED_DECODER
    if path == SHIPPED_DECODER and not path.is_file():
        raise SdfkitError(f"the shipped decoder is missing from the installation ({path})")
    payload = load_torch(path, what="decoder")
    if payload["sdfkit"].get("kind") not in ("decoder", "train_checkpoint"):
        raise SdfkitError(f"{path} is not a decoder file (it holds a {payload['sdfkit'].get('kind')})")
    if payload["sdfkit"].get("kind") == "train_checkpoint":
        payload = payload["decoder"]
    return decoder_from_payload(payload, str(path))
