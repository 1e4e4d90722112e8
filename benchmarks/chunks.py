"""CPU chunk size: near-surface field evaluation and fitting steps, per number of points in a chunk.

A chunk's activations are (points x 8 tiles, hidden) float32 blocks; this
measures how their size sets the speed on the CPU. Each chunk size runs in a
fresh process with the allocator tuned, as the ``sdfkit`` command runs (a
process's heap remembers its largest blocks, so sizes must not share one): it
builds one mesh's scene with the shipped decoder, evaluates the field at points
near the surface (where every tile is active, as in extraction's finest
levels), then times fitting steps and counts their page faults.

    python -m benchmarks.chunks [--mesh ../shared/meshes/val/penguin.obj] [--chunks 2048 4096 8192 16384 20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import REPO, SHARED, machine, write_result

CHILD = """
import json, resource, sys, time
import numpy as np, torch
from sdfkit.runtime import tune_allocator
assert tune_allocator()
from benchmarks.common import shipped_fit_scene
from sdfkit.field import NeuralField
from sdfkit.fit import fit_batch_points, fit_codes
from sdfkit.config import replace_section
mesh_path, chunk, steps, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
decoder, cfg, scene, unit = shipped_fit_scene(mesh_path, 3)
rng = np.random.default_rng(0)
near = (np.asarray(unit.sample(points, seed=0)) + rng.normal(scale=0.005, size=(points, 3))).astype(np.float32)
field = NeuralField(decoder, scene.grid, cfg.loss.band, chunk=chunk)
t0 = time.perf_counter()
field(near)
rate = points / (time.perf_counter() - t0)
fit_codes(decoder, scene, cfg, chunk_points=chunk)  # the heap grows to this chunk's steps once
cfg = replace_section(cfg, "fit", steps=steps)
faults, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
done, _ = fit_codes(decoder, scene, cfg, chunk_points=chunk)
print(json.dumps({"eval_points_per_s": rate, "step_s": (time.perf_counter() - t0) / done,
                  "faults_per_step": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / done,
                  "batch_points": fit_batch_points(cfg, scene.grid.num_codes), "hidden": decoder.hidden,
                  "threads": torch.get_num_threads()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--chunks", nargs="*", type=int, default=[2048, 4096, 8192, 16384, 20000])
    parser.add_argument("--steps", type=int, default=20, help="timed fitting steps per run (after 3 untimed)")
    parser.add_argument("--points", type=int, default=200_000, help="near-surface points evaluated per run")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the chunk sizes (the best is kept)")
    parser.add_argument("--name", default="chunks-cpu")
    args = parser.parse_args()
    from sdfkit.runtime import cpu_chunk_points

    rows = {c: {"chunk_points": c, "eval_points_per_s": [], "step_s": [], "faults_per_step": []} for c in args.chunks}
    info: dict = {}
    for _ in range(args.repeats):
        for chunk in args.chunks:
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.mesh), str(chunk), str(args.steps),
                                  str(args.points)], capture_output=True, text=True, check=True, cwd=REPO)
            run = json.loads(out.stdout.strip().splitlines()[-1])
            for key in ("eval_points_per_s", "step_s", "faults_per_step"):
                rows[chunk][key].append(round(run.pop(key), 4))
            info = run
            r = rows[chunk]
            print(f"chunk {chunk:6d}: {r['eval_points_per_s'][-1]:,.0f} near-surface evaluations/s, "
                  f"{r['step_s'][-1]:.3f} s/step, {r['faults_per_step'][-1]:,.0f} page faults/step", flush=True)
    for r in rows.values():
        r["best_eval_points_per_s"], r["best_step_s"] = max(r["eval_points_per_s"]), min(r["step_s"])
    default = cpu_chunk_points(info["hidden"])
    write_result(args.name, {"mesh": args.mesh.name, **info, "default_chunk_points": default, "rows": list(rows.values())})
    print(f"{machine()}; default chunk {default} points (hidden {info['hidden']}, batch {info['batch_points']} points)")
    for r in rows.values():
        print(f"  {r['chunk_points']:6d} points: best {r['best_eval_points_per_s']:,.0f} evaluations/s, "
              f"{r['best_step_s']:.3f} s/step")


if __name__ == "__main__":
    main()
