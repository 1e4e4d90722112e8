"""The Chamfer each refinement schedule reaches from the same encoder codes, in one process.

For each mesh the command's preparation runs once (read, sample, encode); then each variant refines the encoder's
codes with ``sdfkit.fit.fit_codes``, extracts the mesh as ``sdfkit fit`` does (256^3, unsupported parts dropped) and
scores it against the input (IoU from 250,000 points instead of the protocol's 1,000,000, to save time). A variant
is ``key=value,...`` of the ``fit`` settings the refinement takes (``steps``, ``lr``, ``lr_final_fraction``,
``average``, ``batch_points``, ``seed``, ...) over the command's own; an empty variant is the default. The
seconds are the refinement's alone, and compare only within one run.

    python -m benchmarks.refine_schedule --meshes penguin torus --variants "" average=0 average=0.8,steps=200
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from benchmarks.common import parse_settings, prepared_val_fit, write_table

VOLUME_POINTS = 250_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin"], help="names in ../shared/meshes/val")
    parser.add_argument("--variants", nargs="*", default=["", "average=0"], help="key=value,... ('' the default)")
    parser.add_argument("--name", default="refine_schedule")
    args = parser.parse_args()

    import torch

    from sdfkit.config import replace_section
    from sdfkit.fit import extract_fit, fit_codes
    from sdfkit.metrics import evaluate_meshes

    rows, cells = [], []
    for name in args.meshes:
        prepared = prepared_val_fit(name)
        scene, decoder = prepared.scene, prepared.decoder
        assert prepared.gt is not None
        start = scene.grid.codes.detach().clone()
        for text in args.variants:
            cfg = replace_section(prepared.cfg, "fit", **parse_settings(text))
            with torch.no_grad():
                scene.grid.codes.copy_(start)
            t = time.perf_counter()
            fit_codes(decoder, scene, cfg)
            seconds = time.perf_counter() - t
            _, _, recon, _ = extract_fit(dataclasses.replace(prepared, cfg=cfg))
            metrics = evaluate_meshes(recon, prepared.gt, num_volume=VOLUME_POINTS)
            row = {"mesh": name, "variant": text or "default", "steps": cfg.fit.steps, "average": cfg.fit.average,
                   "precision": cfg.fit.precision, "weight_floor": cfg.fit.weight_floor,
                   "refine_s": round(seconds, 1), "chamfer": metrics["chamfer"], "iou": metrics["iou"]}
            rows.append(row)
            cells.append([name, row["variant"], cfg.fit.steps, cfg.fit.average, cfg.fit.precision,
                          cfg.fit.weight_floor, row["refine_s"], f"{metrics['chamfer']:.3e}", f"{metrics['iou']:.4f}"])
            print(row, flush=True)
    write_table(args.name, "Refinement schedules from the same encoder codes",
                f"One process per run; IoU from {VOLUME_POINTS:,} points.",
                ["mesh", "variant", "steps", "average", "precision", "weight floor", "refine s", "CD", "IoU"], cells,
                {"rows": rows})


if __name__ == "__main__":
    main()
