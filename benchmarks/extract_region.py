"""Extraction of a fitted scene with and without the active-region bound: points evaluated and seconds.

The penguin's scene as ``sdfkit fit`` builds it, with two code tables: the shipped encoder's (a fair field) and
the grid's initial noise (a poor field, whose sign changes all over its active tiles). Each is extracted coarse
to fine at ``--resolution`` with ``region`` off and on (``NeuralField.may_cross``); the points evaluated do not
depend on the machine's load, the seconds do.

    OMP_NUM_THREADS=1 python -m benchmarks.extract_region --resolution 128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.common import SHARED, load_average, shipped_fit_scene, write_result, write_result_text
from data_prep.sdf import MeshSDF
from sdfkit.code_init import encoder_codes
from sdfkit.decoder_io import load_decoder
from sdfkit.extract import evaluate_grid_coarse_to_fine
from sdfkit.field import NeuralField


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--name", default="extract_region")
    args = parser.parse_args()
    decoder, cfg, scene, unit = shipped_fit_scene(args.mesh, 300)
    noise = scene.grid.codes.detach().clone()
    _, _, dec_id = load_decoder(None)
    tables = {"encoder": encoder_codes(scene, dec_id, MeshSDF(unit)), "noise": noise}
    rows = []
    for codes_name, codes in tables.items():
        with torch.no_grad():
            scene.grid.codes.copy_(codes)
        field = NeuralField(decoder, scene.grid, cfg.loss.band)
        for bounded in (False, True):
            t0 = time.perf_counter()
            _, evaluations = evaluate_grid_coarse_to_fine(field, args.resolution, field.bounds,
                                                          region=field.may_cross if bounded else None)
            rows.append({"mesh": args.mesh.name, "codes": codes_name, "region": bounded, "evaluations": evaluations,
                         "seconds": round(time.perf_counter() - t0, 1), "load": load_average()})
            print(json.dumps(rows[-1]), flush=True)
    write_result(args.name, {"resolution": args.resolution, "rows": rows})
    lines = [f"{args.mesh.name}, {scene.grid.num_codes} codes, {args.resolution}^3 coarse to fine", "",
             "| codes | region bound | points evaluated | fraction of the lattice | seconds | load |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['codes']} | {'on' if r['region'] else 'off'} | {r['evaluations']} | "
                     f"{r['evaluations'] / args.resolution ** 3:.3f} | {r['seconds']} | {r['load'][0]} |")
    text = "\n".join(lines) + "\n"
    write_result_text(args.name, ".md", text)
    print(text)


if __name__ == "__main__":
    main()
