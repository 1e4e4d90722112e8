"""Fitting steps with and without :func:`sdfkit.runtime.tune_allocator`: page faults, kernel time, wall time.

Each variant runs in a fresh process (the allocator's settings are process-wide):
it builds the scene of one mesh with the shipped decoder, then times ``--steps``
fitting steps.

    python -m benchmarks.allocator [--mesh ../shared/meshes/val/penguin.obj] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import write_result

SHARED = Path(__file__).resolve().parents[2] / "shared" / "meshes"

CHILD = """
import json, resource, sys, time
if sys.argv[1] == "tuned":
    from sdfkit.runtime import tune_allocator
    assert tune_allocator()
from data_prep.mesh import load_mesh
from sdfkit.autodecoder import make_scene
from sdfkit.decoder_io import load_decoder
from sdfkit.fit import FitOptions, fit_codes, fit_settings
from sdfkit.samples import load_or_prepare
mesh = load_mesh(sys.argv[2])
decoder, base, _ = load_decoder(None)
cfg = fit_settings(base, FitOptions(steps=int(sys.argv[3])))
samples = load_or_prepare(sys.argv[2], cfg.sampling, seed=0)
unit = mesh.copy()
unit.vertices = samples.normalization.to_unit(mesh.vertices)
scene = make_scene(samples, cfg, name="scene", seed=0, mesh_unit=unit)
before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
steps, _ = fit_codes(decoder, scene, cfg)
wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"steps": steps, "wall_s": wall, "user_s": after.ru_utime - before.ru_utime,
                  "kernel_s": after.ru_stime - before.ru_stime, "page_faults": after.ru_minflt - before.ru_minflt}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--name", default="allocator-cpu")
    args = parser.parse_args()
    rows = {}
    for mode in ("default", "tuned"):
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(args.mesh), str(args.steps)],
                             capture_output=True, text=True, check=True)
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        r = rows[mode]
        print(f"{mode:8s} {r['steps']} steps  wall {r['wall_s']:.1f} s  user {r['user_s']:.1f} s  "
              f"kernel {r['kernel_s']:.1f} s  page faults {r['page_faults']:,}", flush=True)
    write_result(args.name, {"mesh": args.mesh.name, "rows": rows})


if __name__ == "__main__":
    main()
