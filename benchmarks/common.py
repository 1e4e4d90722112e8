"""Helpers shared by the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: The repository root: the working folder of the benchmarks' child processes.
REPO = RESULTS.parents[1]
#: The team's meshes, beside the repository (``../shared/meshes``).
SHARED = REPO.parent / "shared" / "meshes"


def machine() -> str:
    """One line naming the machine a figure came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def git_commit() -> str:
    """The repository's commit (with ``+dirty`` when files differ from it), or "unknown"."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other jobs on a shared machine make timings noisy)."""
    return [round(v, 2) for v in os.getloadavg()]


def write_result(name: str, data: dict, out_dir: Path | None = None) -> Path:
    """Write ``data`` (with the machine) as JSON to ``results/<name>.json``; returns the path."""
    from sdfkit.io import atomic_write_text

    out_dir = out_dir or RESULTS
    data = {"machine": machine(), **data}
    path = Path(out_dir) / f"{name}.json"
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path


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
