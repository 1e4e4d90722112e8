"""Helpers shared by the benchmark scripts: machine description, provenance and result files.

Every results file records where its figures came from: the command, the git commit, the machine (CPU model from
``/proc/cpuinfo``, and the GPU's name when one is used), the load average before and after the run, and the UTC date.
Results are added, never overwritten: a run whose name is already taken under ``benchmarks/results/`` writes its
files under the name with the run's UTC time appended (``oracle-20261129T153000Z.json``), so an earlier figure keeps
its source.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from data_prep.files import atomic_write_text
from sdfkit.runtime import device_name

RESULTS = Path(__file__).resolve().parent / "results"
#: The repository root: the working folder of the benchmarks' child processes.
REPO = RESULTS.parents[1]
#: The team's meshes, beside the repository (``../shared/meshes``).
SHARED = REPO.parent / "shared" / "meshes"

#: 1-minute load average when the benchmark started: every script imports this module before its work begins.
LOAD_BEFORE = os.getloadavg()[0]
#: This run's UTC start, which names its files when the plain name is taken.
RUN_STAMP = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
_stems: dict[tuple[Path, str], str] = {}


#: A setting a benchmark's variant names: ``key=value`` read as a number, a flag or a word.
Setting = float | int | bool | str


def parse_settings(text: str) -> dict[str, Setting]:
    """``key=value,...`` -> the settings it names: numbers (whole ones as ints: counts such as ``batch_points``),
    ``true``/``false`` as flags, anything else as text (``precision=bf16``, a file's path)."""
    settings: dict[str, Setting] = {}
    for key, _, value in (item.partition("=") for item in text.split(",") if item):
        if value.lower() in ("true", "false"):
            settings[key] = value.lower() == "true"
            continue
        try:
            number = float(value)
        except ValueError:
            settings[key] = value
            continue
        settings[key] = int(number) if number.is_integer() else number
    return settings


def machine() -> str:
    """One line naming the machine a figure came from: CPU model, cores, and the GPU's name when there is one."""
    import torch

    text = f"{device_name(torch.device('cpu'))}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        text += f", GPU {device_name(torch.device('cuda', 0))}"
    return text


def command() -> str:
    """The command line that started this process, as a user would type it (``python -m benchmarks.NAME ...``)."""
    script = Path(sys.argv[0])
    if script.parent.name == "benchmarks" and script.suffix == ".py":
        head = f"python -m benchmarks.{script.stem}"
    else:
        head = " ".join(["python", sys.argv[0]]) if sys.argv[0] else "python"
    return " ".join([head, *map(shlex.quote, sys.argv[1:])])


def git_commit() -> str:
    """The checked-out commit, with ``+dirty`` when tracked files outside the results differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 ":!benchmarks/results"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+dirty" if status.stdout.strip() else "")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other jobs on a shared machine make timings noisy)."""
    return [round(v, 2) for v in os.getloadavg()]


def provenance(load_before: float | None = None) -> dict:
    """Where and how a figure was taken: command, commit, machine, load average before/after, UTC date."""
    return {
        "command": command(),
        "commit": git_commit(),
        "machine": machine(),
        "load_before": round(LOAD_BEFORE if load_before is None else load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def result_stem(name: str, out_dir: Path | None = None) -> Path:
    """Path without suffix for this run's files called ``name``: the plain name, or the name with this run's stamp
    when an earlier run already holds it. One run keeps one stem, so its repeated saves and its .json, .md and
    .txt files stay together."""
    out_dir = Path(out_dir or RESULTS)
    key = (out_dir.resolve(), name)
    if key not in _stems:
        stem, n = name, 1
        while any(out_dir.glob(f"{glob.escape(stem)}.*")):
            n += 1
            stem = f"{name}-{RUN_STAMP}" + (f"-{n - 1}" if n > 2 else "")
        _stems[key] = stem
    return out_dir / _stems[key]


def write_result(name: str, data: dict, out_dir: Path | None = None, load_before: float | None = None) -> Path:
    """Write ``data`` with its provenance as JSON to this run's ``results/<name>[-STAMP].json``; returns the path."""
    path = Path(f"{result_stem(name, out_dir)}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**provenance(load_before), **data}, indent=2, default=float) + "\n")
    return path


def write_result_text(name: str, suffix: str, text: str, out_dir: Path | None = None) -> Path:
    """Write a table or log beside this run's JSON (same stem, e.g. ``suffix=".md"``); returns the path."""
    path = Path(f"{result_stem(name, out_dir)}{suffix}")
    atomic_write_text(path, text)
    return path


def write_table(name: str, title: str, note: str, columns: list[str], cells: list[list], data: dict,
                out_dir: Path | None = None) -> str:
    """Print and write this run's results: ``data`` as JSON, and as Markdown a ``title``, a line of provenance
    (machine, commit, date, command, load) followed by ``note``, and the table of ``columns`` and ``cells`` (one
    list per row). Returns the Markdown."""
    where = provenance()
    lines = [f"# {title}", "",
             f"Machine: {where['machine']}; commit {where['commit']}; {where['date']}; `{where['command']}`; load "
             f"average {where['load_before']} before, {where['load_after']} after. {note}", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in cells]
    text = "\n".join(lines) + "\n"
    print(text)
    write_result(name, data, out_dir)
    write_result_text(name, ".md", text, out_dir)
    return text


def shipped_fit_scene(mesh_path: str | Path, steps: int):
    """What ``sdfkit fit MESH --steps STEPS`` fits, built the same way: the shipped decoder, its settings, the scene.

    Returns (decoder, cfg, scene, unit_mesh); ``unit_mesh`` is the mesh in the scene's unit frame.
    """
    from data_prep.mesh import load_mesh
    from sdfkit.decoder_io import load_decoder
    from sdfkit.fit import FitRequest, fit_settings
    from sdfkit.samples import load_or_prepare
    from sdfkit.scene import make_scene

    mesh = load_mesh(mesh_path)
    decoder, base, _ = load_decoder(None)
    cfg = fit_settings(base, FitRequest(steps=steps))
    samples = load_or_prepare(mesh_path, cfg.sampling, seed=0)
    unit = mesh.copy()
    unit.vertices = samples.normalization.to_unit(mesh.vertices)
    return decoder, cfg, make_scene(samples, cfg, name="scene", seed=0, mesh_unit=unit), unit


def prepared_val_fit(name: str):
    """``sdfkit fit``'s preparation of ``../shared/meshes/val/NAME.obj`` (read, sample, encode) at its defaults, on
    the CPU, with the command's allocator setting: a :class:`sdfkit.fit.PreparedFit` whose codes are the encoder's."""
    import torch

    from sdfkit.fit import FitRequest, prepare_fit
    from sdfkit.progress import Reporter
    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    with Reporter(enabled=False) as bar:
        return prepare_fit(SHARED / "val" / f"{name}.obj", Path("unused"), "obj", FitRequest(), torch.device("cpu"),
                           bar)


def unscored_seconds(report: dict) -> float:
    """A fit report's seconds without its scoring: what the reconstruction itself cost, to set beside another
    method's unscored time (the report's stage seconds; scoring runs beside the other stages)."""
    return float(sum(v for k, v in report["seconds"].items() if k != "score"))


def timed_fit_command(mesh: Path, out: Path, options: list[str], threads: int | None) -> tuple[dict, float, float]:
    """``sdfkit fit MESH --out OUT`` on the CPU in a fresh process.

    Returns (its report.json, the command's wall-clock seconds, the load average before it started).
    """
    cmd = [sys.executable, "-m", "sdfkit", "fit", str(mesh), "--out", str(out), "--device", "cpu", "--force",
           "--quiet", *options]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sdfkit fit failed on {mesh}: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads((out / "report.json").read_text()), wall, load_before
