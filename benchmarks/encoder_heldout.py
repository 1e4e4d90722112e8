"""Encoder files against each other on held-out meshes: the blended L1 (cells) of their codes alone.

The figure ``sdfkit train-encoder`` logs for ``train.val_data`` (:func:`sdfkit.encoder.validation_l1`), on
the same meshes sampled as a fit samples them, for any number of encoder files serving the shipped decoder:
an earlier file comes from git (``git show COMMIT:sdfkit/pretrained/encoder.pt > old.pt``).

    python -m benchmarks.encoder_heldout --encoders old.pt sdfkit/pretrained/encoder.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import SHARED, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", type=Path, required=True)
    parser.add_argument("--meshes", nargs="+", type=Path,
                        default=[SHARED / "val" / "penguin.obj", SHARED / "val" / "hand.obj"])
    parser.add_argument("--name", default="encoder_heldout")
    args = parser.parse_args()

    from sdfkit.config import EncoderConfig, EncoderTrainConfig
    from sdfkit.decoder_io import load_decoder
    from sdfkit.encoder import load_encoder, validation_l1, validation_scenes

    decoder, dec_cfg, _ = load_decoder(None)
    scenes = validation_scenes(EncoderConfig(train=EncoderTrainConfig(val_data=[str(m) for m in args.meshes])),
                               dec_cfg)
    rows = []
    for path in args.encoders:
        encoder, _ = load_encoder(path)
        rows.append({"encoder": str(path), "l1_cells": validation_l1(decoder, encoder, scenes, dec_cfg.loss.band)})
    write_table(args.name, "Held-out blended L1 of encoded codes (cells)",
                "Each mesh sampled as a fit samples it; the codes straight from the encoder, no refinement.",
                ["encoder"] + [m.stem for m in args.meshes],
                [[r["encoder"]] + [f"{v:.4f}" for v in r["l1_cells"]] for r in rows],
                {"meshes": [str(m) for m in args.meshes], "rows": rows})


if __name__ == "__main__":
    main()
