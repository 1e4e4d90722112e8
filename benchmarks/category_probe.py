"""What limits a category fit: ``sdfkit fit`` on a few meshes under variants of steps, grid density and decoder.

Each variant is the command a user runs (``sdfkit fit MESH --out DIR`` on the CPU in a fresh process, extraction at
the default 256^3, scored under docs/metrics.md), with some settings changed:

    steps=N        ``--steps N`` (after the encoder unless init=random)
    cpo=C          the decoder's settings with ``grid.cells_per_object: C`` (a ``--config`` file without a fit
                   section; the default is 40)
    decoder=PATH   ``--decoder PATH`` (its own settings, the encoder only when one serves it)
    init=random    ``--init random``
    seconds=S      ``--max-seconds S``
    res=R          ``--resolution R`` (marching cubes; the default is 256)

    python -m benchmarks.category_probe --meshes ../shared/meshes/airplanes/val/dh82_dh82.ply \
        --variants default steps=600 cpo=60 cpo=60,steps=600 --name category_probe-airplanes

Rows are written after every fit, so a long run leaves its finished part behind. Load averages before and after
each fit are recorded: compare fit seconds of one run as ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import yaml

from benchmarks.common import REPO, machine, timed_fit_command, write_result, write_result_text

#: The shipped decoder's training config, whose grid section a ``cpo=`` variant changes.
SHIPPED_CONFIG = REPO / "configs" / "shipped.yaml"


def variant_options(spec: str, work: Path) -> list[str]:
    """``sdfkit fit`` options of a variant such as ``cpo=60,steps=600`` (``default``: none)."""
    if spec == "default":
        return []
    options: list[str] = []
    for item in spec.split(","):
        key, _, value = item.partition("=")
        if key == "steps":
            options += ["--steps", value]
        elif key == "init":
            options += ["--init", value]
        elif key == "seconds":
            options += ["--max-seconds", value]
        elif key == "res":
            options += ["--resolution", value]
        elif key == "decoder":
            options += ["--decoder", value]
        elif key == "cpo":
            cfg = yaml.safe_load(SHIPPED_CONFIG.read_text())
            cfg["grid"]["cells_per_object"] = float(value)
            # Without its fit section the file keeps the step count of the command (and of the other settings).
            cfg.pop("fit", None)
            path = work / f"cpo{value}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            options += ["--config", str(path)]
        else:
            raise SystemExit(f"unknown variant setting {key!r} in {spec!r}")
    return options


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| mesh | variant | grid | codes | init | steps | fit s | whole command s | CD | IoU | F@1% "
             "| load before/after |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mesh']} | {r['variant']} | {'x'.join(map(str, r['grid']))} | {r['codes']} | {r['init']} | "
                     f"{r['steps']} | {r['fit_s']:.1f} | {r['wall_s']:.1f} | {r['chamfer']:.3e} | {r['iou']:.4f} | "
                     f"{r['fscore_1pct']:.4f} | {r['load_before']}/{r['load_after']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", default=["default"])
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each fit")
    parser.add_argument("--name", default="category_probe")
    args = parser.parse_args()
    header = (f"# Category fits under variants\n\nMachine: {machine()} (shared). Each row is `sdfkit fit MESH` on the "
              f"CPU with {args.threads} thread(s) and the variant's settings; extraction at 256^3 unless the variant sets `res`; metrics in the GT's "
              "unit frame (docs/metrics.md).")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for mesh in args.meshes:
            for spec in args.variants:
                report, wall, load_before = timed_fit_command(mesh, work / "fit", variant_options(spec, work),
                                                              args.threads)
                m = report["metrics"]
                rows.append({"mesh": mesh.stem, "variant": spec, "grid": report["tiles"]["grid"],
                             "codes": report["tiles"]["active"], "init": report["init"], "steps": report["steps"],
                             "fit_s": report["seconds"].get("fit", 0.0) + report["seconds"].get("init", 0.0),
                             "wall_s": round(wall, 1), "chamfer": m["chamfer"], "iou": m["iou"],
                             "fscore_1pct": m["fscore_1pct"], "load_before": round(load_before, 2),
                             "load_after": round(os.getloadavg()[0], 2)})
                print(markdown(rows[-1:], "").splitlines()[-1], flush=True)
                write_result(args.name, {"threads": args.threads, "rows": rows})
                write_result_text(args.name, ".md", markdown(rows, header))


if __name__ == "__main__":
    main()
