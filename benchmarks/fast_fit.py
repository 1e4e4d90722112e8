"""`sdfkit fit` from the encoder's codes against today's 600-step fit from noise, same machine, same run.

For each mesh, every variant runs the command a user runs (``sdfkit fit MESH
--out DIR``, extraction at 256^3, scoring, preview) in a fresh process on the
CPU; its ``report.json`` gives seconds per stage, Chamfer and IoU. The
reference is ``--init random --steps 600`` (the auto-decoder's fit); the
encoder alone is ``--steps 0``; the others refine the encoder's codes for a
few steps or within a ``--max-seconds`` budget. The oracle (the exact SDF
extracted at the same resolution over the same box) is computed once per mesh.
Load averages before and after each run are recorded: on a shared machine
compare rows of one run as ratios.

    python -m benchmarks.fast_fit                                  # penguin: reference, encoder alone, 25/50/100 steps
    python -m benchmarks.fast_fit --meshes ../shared/meshes/val/*.obj --variants random:600 encoder:0 encoder:100
    python -m benchmarks.fast_fit --variants encoder:0 encoder:600@5 encoder:600@10   # steps@max-seconds
    python -m benchmarks.fast_fit --variants encoder:300 encoder:3+lm   # +lm: --optimizer lm (steps are sweeps)
    python -m benchmarks.fast_fit --variants encoder:150/lr=0.05,points_per_code=1.5   # /key=value: fit settings
    python -m benchmarks.fast_fit --variants encoder:400/grid.cells_per_object=80     # /section.key=value: others
    python -m benchmarks.fast_fit --variants encoder:400 encoder:400/encoder=runs/encoder.pt   # another encoder file
    python -m benchmarks.fast_fit --meshes ../shared/meshes/scene_a.obj --composed --variants encoder:0 encoder:300
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import RESULTS, SHARED, Setting, git_commit, parse_settings, timed_fit_command, write_result


def parse_variant(text: str) -> tuple[str, int, float | None, str, dict[str, Setting]]:
    """``init:steps[@max_seconds][+optimizer][/key=value,...]`` -> (init, steps, max_seconds, optimizer, fit settings);
    the optimizer is adam unless named, the settings are the ``fit`` section's (``lr``, ``points_per_code``, ...):
    :func:`benchmarks.common.parse_settings` (``compile=true``, ``precision=fp32``); ``encoder=PATH`` is the
    command's ``--encoder`` file."""
    text, _, settings = text.partition("/")
    text, _, optimizer = text.partition("+")
    init, _, rest = text.partition(":")
    steps, _, budget = rest.partition("@")
    fit = parse_settings(settings)
    return init, int(steps), float(budget) if budget else None, optimizer or "adam", fit


def yaml_value(value: Setting) -> str:
    """A setting as a config file writes it: ``true``/``false``, the number, or the text."""
    if isinstance(value, str):
        return value
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def run_fit(mesh: Path, out: Path, init: str, steps: int, budget: float | None, threads: int | None,
            optimizer: str = "adam", fit: dict[str, Setting] | None = None) -> dict:
    """``sdfkit fit`` in a fresh process on the CPU; its report with the command's wall-clock seconds.

    fit : config settings passed through a ``--config`` file beside ``out``: ``key`` is the ``fit`` section's,
        ``section.key`` another section's (``grid.cells_per_object``).
    """
    options = ["--init", init, "--steps", str(steps)] + (["--max-seconds", str(budget)] if budget is not None else [])
    options += ["--optimizer", optimizer] if optimizer != "adam" else []
    settings = fit or {}
    options += ["--encoder", str(settings["encoder"])] if "encoder" in settings else []
    fit = {key: value for key, value in settings.items() if key != "encoder"}
    if fit:
        config = out.with_suffix(".yaml")
        config.parent.mkdir(parents=True, exist_ok=True)
        sections: dict[str, dict[str, Setting]] = {}
        for key, value in fit.items():
            section, _, name = key.rpartition(".")
            sections.setdefault(section or "fit", {})[name] = value
        config.write_text("".join(f"{section}:\n" + "".join(f"  {name}: {yaml_value(value)}\n" for name, value in keys.items())
                                  for section, keys in sections.items()))
        options += ["--config", str(config)]
    report, wall, load_before = timed_fit_command(mesh, out, options, threads)
    return {
        "mesh": mesh.name, "init": init, "optimizer": report.get("optimizer", "adam"), "steps_asked": steps,
        "fit_settings": settings, "max_seconds": budget, "steps": report["steps"],
        "codes": report["tiles"]["active"], "stages_s": report["seconds"], "wall_s": round(wall, 1),
        "chamfer": report["metrics"]["chamfer"], "iou": report["metrics"]["iou"],
        "refinement": report.get("refinement", {}), "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def oracle_chamfer(mesh: Path, fit_dir: Path, resolution: int) -> float:
    """Chamfer of the exact SDF extracted at ``resolution`` over the fit's box."""
    from benchmarks.fit_quality import oracle_metrics

    return float(oracle_metrics(mesh, fit_dir, resolution)["chamfer"])


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| mesh | codes | init | optimizer | fit settings | steps (asked) | --max-seconds | prepare s | init s | fit s | extract s "
             "| score s | preview s | whole command s | CD | CD / oracle | CD / 600-step | IoU | load before/after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["stages_s"]
        settings = ", ".join(f"{key} {yaml_value(value)}" for key, value in r.get("fit_settings", {}).items())
        lines.append(
            f"| {r['mesh']} | {r['codes']} | {r['init']} | {r.get('optimizer', 'adam')} | {settings or '-'} | {r['steps']} ({r['steps_asked']}) | {r['max_seconds'] or '-'} | "
            f"{s['prepare']:.1f} | {s.get('init', 0.0):.1f} | {s['fit']:.1f} | {s['extract']:.1f} | {s['score']:.1f} | "
            f"{s.get('preview', 0.0):.1f} | {r['wall_s']:.1f} | {r['chamfer']:.3e} | {r['cd_over_oracle']:.2f} | "
            f"{r['cd_over_reference']:.2f} | {r['iou']:.4f} | {r['load_before']}/{r['load_after']} |")
    return "\n".join(lines) + "\n"


def with_ratios(rows: list[dict], earlier: Sequence[dict] = ()) -> list[dict]:
    """Rows with CD / 600-step: each mesh's ``random:600`` row without a budget, and without fit settings other than
    its ``precision``, is its reference.

    ``earlier``: rows of another results file whose references serve meshes this run has none for (Chamfer does not
    depend on the machine's load, so it compares across runs; times do not).
    """
    reference = {r["mesh"]: r["chamfer"] for r in [*earlier, *rows]
                 if r["init"] == "random" and r["steps_asked"] == 600 and r["max_seconds"] is None
                 and set(r.get("fit_settings") or {}) <= {"precision"}}
    return [{**r, "reference_chamfer": reference.get(r["mesh"]),
             "cd_over_reference": r["chamfer"] / reference[r["mesh"]] if r["mesh"] in reference else float("nan")}
            for r in rows]


def render(name: str, reference_from: Sequence[str] = ()) -> str:
    """The markdown table of a results file (also of a run stopped part way), written beside it.

    reference_from : other results files whose 600-step rows give CD / 600-step where this run has none.
    """
    data = json.loads((RESULTS / f"{name}.json").read_text())
    earlier = [row for other in reference_from for row in json.loads((RESULTS / f"{other}.json").read_text())["rows"]]
    header = (f"Machine: {data['machine']}; commit {data['commit']}; {data['date']}; `{data['command']}`; "
              f"load average at start {data['load_start']}, at end {data.get('load_end', 'not reached (stopped)')}")
    if reference_from:
        header += f"; CD / 600-step against the reference rows of {', '.join(reference_from)}"
    text = markdown(with_ratios(data["rows"], earlier), header)
    (RESULTS / f"{name}.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", metavar="NAME", help="only rewrite results/NAME.md from results/NAME.json")
    parser.add_argument("--reference-from", metavar="NAME", nargs="*", default=[],
                        help="with --render: the 600-step rows of results/NAME.json")
    parser.add_argument("--meshes", nargs="*", type=Path, default=[SHARED / "val" / "penguin.obj"])
    parser.add_argument("--variants", nargs="*", default=["random:600", "encoder:0", "encoder:25", "encoder:50",
                                                          "encoder:100"],
                        help="init:steps[@max_seconds][+optimizer][/key=value,...]; a mesh's random:600 (at most its "
                             "precision set) is its reference")
    parser.add_argument("--composed", action="store_true",
                        help="also fit the scene composed from every mesh of ../shared/meshes/val (data_prep.compose)")
    parser.add_argument("--resolution", type=int, default=256, help="the fits' marching-cubes resolution (default)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the runs (default: torch's)")
    parser.add_argument("--name", default=None, help="results file name (default: fast_fit-<UTC date and time>)")
    args = parser.parse_args()

    if args.render:
        print(render(args.render, args.reference_from))
        return
    variants = [parse_variant(v) for v in args.variants]
    args.name = args.name or "fast_fit-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M")
    meta = {"command": "python -m benchmarks.fast_fit " + " ".join(sys.argv[1:]), "commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "threads": args.threads, "load_start": [round(x, 2) for x in os.getloadavg()]}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.composed:
            from data_prep.compose import compose_scene
            from sdfkit.export import export_mesh

            scene = Path(tmp) / "scene_val.obj"
            export_mesh(compose_scene(sorted((SHARED / "val").glob("*.obj"))), scene)
            args.meshes = [*args.meshes, scene]
        for m, mesh in enumerate(args.meshes):
            oracle = None
            for v, (init, steps, budget, optimizer, fit) in enumerate(variants):
                out = Path(tmp) / f"m{m}v{v}"
                row = run_fit(mesh, out, init, steps, budget, args.threads, optimizer, fit)
                if oracle is None:
                    oracle = oracle_chamfer(mesh, out, args.resolution)
                row["oracle_chamfer"] = oracle
                row["cd_over_oracle"] = row["chamfer"] / oracle
                rows.append(row)
                print(json.dumps(row), flush=True)
                write_result(args.name, {**meta, "rows": rows})
                render(args.name)
    meta["load_end"] = [round(x, 2) for x in os.getloadavg()]
    write_result(args.name, {**meta, "rows": with_ratios(rows)})
    print(render(args.name))


if __name__ == "__main__":
    main()
