"""Loss against wall-clock: Adam (``sdfkit fit``'s refinement) against colour-by-colour LM, from the encoder's codes.

Both start from the same encoder codes of the same scene (what ``sdfkit fit MESH`` builds with the shipped
decoder) and are scored by the mean clamped L1 (cells) on one fixed draw of 16,384 samples that neither
optimiser steps on (seed 99). Adam runs its default schedule of each ``--adam-steps`` length at the fit's batch;
LM runs ``--sweeps`` sweeps at ``--lm-points-per-code`` points per code. Times are of the optimiser
alone, one process, so compare them as ratios within one run.

    OMP_NUM_THREADS=1 python -m benchmarks.lm_vs_adam --meshes ../shared/meshes/val/penguin.obj
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from functools import partial
from pathlib import Path

import torch

from benchmarks.common import SHARED, load_average, shipped_fit_scene, write_result, write_result_text
from data_prep.sdf import MeshSDF
from sdfkit.code_init import encoder_codes
from sdfkit.decoder_io import load_decoder
from sdfkit.encoder import sample_l1
from sdfkit.fit import fit_codes
from sdfkit.lm import lm_fit_codes

HELD_OUT_SEED = 99


def adam_curve(decoder, scene, cfg, schedules: list[int], lr: float) -> list[tuple[float, float, int]]:
    """(seconds, held-out L1, steps) at the end of Adam schedules of each length at peak rate ``lr``, each from the
    same start."""
    start = scene.grid.codes.detach().clone()
    curve = [(0.0, sample_l1(decoder, scene, cfg.loss.band, seed=HELD_OUT_SEED), 0)]
    for steps in schedules:
        with torch.no_grad():
            scene.grid.codes.copy_(start)
        t0 = time.perf_counter()
        fit_codes(decoder, scene, dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, steps=steps, lr=lr)))
        curve.append((time.perf_counter() - t0, sample_l1(decoder, scene, cfg.loss.band, seed=HELD_OUT_SEED), steps))
    return curve


def lm_curve(decoder, scene, cfg, sweeps: int, points_per_code: float) -> list[tuple[float, float, int]]:
    """(seconds of the optimiser alone, held-out L1, sweeps) after each LM sweep."""
    curve = [(0.0, sample_l1(decoder, scene, cfg.loss.band, seed=HELD_OUT_SEED), 0)]
    t0 = time.perf_counter()
    scoring = 0.0

    def record(sweep: int, _l1: float) -> None:
        nonlocal scoring
        t = time.perf_counter()
        held_out = sample_l1(decoder, scene, cfg.loss.band, seed=HELD_OUT_SEED)
        curve.append((t - t0 - scoring, held_out, sweep))
        scoring += time.perf_counter() - t

    lm_fit_codes(decoder, scene.grid, scene.points, scene.sdf, cfg.loss.band, cfg.loss.code_reg, sweeps,
                 int(points_per_code * scene.grid.num_codes), seed=cfg.fit.seed, on_sweep=record)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", type=Path, default=[SHARED / "val" / "penguin.obj"])
    parser.add_argument("--adam-steps", type=int, nargs="*", default=[100, 300], help="Adam schedules to time")
    parser.add_argument("--adam-lr", type=float, nargs="*", default=[2e-2], help="peak rates (the fit's: 2e-2)")
    parser.add_argument("--sweeps", type=int, default=4)
    parser.add_argument("--lm-points-per-code", type=float, nargs="*", default=[16.0])
    parser.add_argument("--name", default="lm_vs_adam")
    args = parser.parse_args()
    rows = []
    for mesh in args.meshes:
        decoder, cfg, scene, unit = shipped_fit_scene(mesh, 300)
        _, _, dec_id = load_decoder(None)
        with torch.no_grad():
            scene.grid.codes.copy_(encoder_codes(scene, dec_id, MeshSDF(unit)))
        start_codes = scene.grid.codes.detach().clone()
        runs = [(f"lm {ppc:g} points/code", partial(lm_curve, decoder, scene, cfg, args.sweeps, ppc))
                for ppc in args.lm_points_per_code]
        runs += [(f"adam lr {lr:g}", partial(adam_curve, decoder, scene, cfg, args.adam_steps, lr))
                 for lr in args.adam_lr]
        for optimizer, run_curve in runs:
            # Every optimiser starts from the same encoder codes.
            with torch.no_grad():
                scene.grid.codes.copy_(start_codes)
            rows.append({"mesh": mesh.name, "codes": scene.grid.num_codes, "optimizer": optimizer,
                         "curve": run_curve(), "load": load_average()})
            print(json.dumps(rows[-1]), flush=True)
    write_result(args.name, {"threads": os.environ.get("OMP_NUM_THREADS"), "rows": rows})
    lines = ["| mesh | codes | optimiser | (seconds, held-out L1 cells, steps or sweeps) ... |", "|---|---|---|---|"]
    for r in rows:
        points = " ".join(f"({s:.1f} s, {l1:.4f}, {n})" for s, l1, n in r["curve"])
        lines.append(f"| {r['mesh']} | {r['codes']} | {r['optimizer']} | {points} |")
    text = "\n".join(lines) + "\n"
    write_result_text(args.name, ".md", text)
    print(text)


if __name__ == "__main__":
    main()
