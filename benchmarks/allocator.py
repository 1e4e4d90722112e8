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

from benchmarks.common import REPO, SHARED, write_result

CHILD = """
import json, resource, sys, time
if sys.argv[1] == "tuned":
    from sdfkit.runtime import tune_allocator
    assert tune_allocator()
from benchmarks.common import shipped_fit_scene
from sdfkit.fit import fit_codes
decoder, cfg, scene, _ = shipped_fit_scene(sys.argv[2], int(sys.argv[3]))
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
                             capture_output=True, text=True, check=True, cwd=REPO)
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        r = rows[mode]
        print(f"{mode:8s} {r['steps']} steps  wall {r['wall_s']:.1f} s  user {r['user_s']:.1f} s  "
              f"kernel {r['kernel_s']:.1f} s  page faults {r['page_faults']:,}", flush=True)
    write_result(args.name, {"mesh": args.mesh.name, "rows": rows})


if __name__ == "__main__":
    main()
