"""Killed and concurrent runs: ``sdfkit prep``, ``train`` and ``fit`` SIGKILLed at random moments, then rerun.

Each command runs in its own process group, which is SIGKILLed whole (as a scheduler or the OOM killer ends a
job) after a delay drawn with a fixed seed. Afterwards no corrupt output may exist, and a rerun must complete with
the same result as an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import trimesh
import yaml

from sdfkit.io import load_torch

REPO = Path(__file__).resolve().parents[1]
KILL_SEED = 20261123
KILLS = 3
#: Same decoder after a killed-and-resumed training as after an uninterrupted one.
RESUME_TOLERANCE = 1e-5
#: How long any one command here may take before the test gives up.
COMMAND_TIMEOUT = 300
FIT_ARGS = ("--steps", "5", "--resolution", "32", "--grid-resolution", "8", "--no-preview", "--quiet", "--seed", "0")


def sdfkit(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sdfkit", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=COMMAND_TIMEOUT)
    return proc.returncode, err


def run_killed(args: tuple[str, ...], delay: float) -> bool:
    """Start ``sdfkit ARGS`` and SIGKILL its whole process group after ``delay`` s; False if it finished first."""
    proc = sdfkit(*args)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return True


def run_ok(*args: str) -> float:
    t = time.perf_counter()
    code, err = finish(sdfkit(*args))
    assert code == 0, err
    return time.perf_counter() - t


def kill_delays(longest: float) -> np.ndarray:
    """Delays within the first 80% of an uninterrupted run's ``longest`` seconds, so that the kills land."""
    return np.random.default_rng(KILL_SEED).uniform(0.3, max(0.8 * longest, 1.0), size=KILLS)


def write_meshes(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    shapes = {"ball": trimesh.creation.icosphere(subdivisions=3, radius=0.6),
              "box": trimesh.creation.box((1.0, 0.6, 0.4)),
              "ring": trimesh.creation.torus(0.6, 0.2, major_sections=32, minor_sections=16)}
    paths = []
    for name, mesh in shapes.items():
        paths.append(folder / f"{name}.obj")
        mesh.export(paths[-1])
    return paths


def assert_samples_folder_sound(out: Path) -> None:
    """Every visible .npz loads, every split or manifest file parses; the only other files are hidden temporaries
    of an interrupted write."""
    from data_prep.sampling import SdfSamples

    for path in out.rglob("*"):
        if path.is_dir():
            continue
        if path.name.startswith("."):
            assert ".tmp" in path.name, f"unexpected hidden file {path}"
        elif path.suffix == ".npz":
            SdfSamples.load(path)
        elif path.name.startswith("manifest") and path.suffix == ".csv":
            rows = list(csv.DictReader(path.open(newline="")))
            assert rows and all(row["shape"] for row in rows), path
        else:
            assert path.name.startswith(("split", "manifest")) and path.suffix == ".json", path
            json.loads(path.read_text())


def test_prep_killed(tmp_path):
    meshes = tmp_path / "meshes"
    write_meshes(meshes)
    args = ("prep", str(meshes), "--points", "60000", "--workers", "2", "--quiet")
    longest = run_ok(*args, "--out", str(tmp_path / "reference"))
    killed = tmp_path / "killed"
    landed = []
    for delay in kill_delays(longest):
        landed.append(run_killed((*args, "--out", str(killed)), float(delay)))
        if killed.exists():
            assert_samples_folder_sound(killed)
    assert any(landed), f"every run finished before its kill (delays {kill_delays(longest)}, run {longest:.1f} s)"
    run_ok(*args, "--out", str(killed))
    assert_samples_folder_sound(killed)
    from data_prep.sampling import SdfSamples

    for name in ("ball", "box", "ring"):
        a, b = SdfSamples.load(tmp_path / "reference" / f"{name}.npz"), SdfSamples.load(killed / f"{name}.npz")
        for key in ("points", "sdf", "surface_points", "surface_normals"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        assert a.mesh_hash == b.mesh_hash and a.settings == b.settings
    assert json.loads((killed / "split.json").read_text()) == json.loads((tmp_path / "reference" / "split.json").read_text())


def tiny_config(tmp_path: Path) -> Path:
    mesh = tmp_path / "ball.obj"
    trimesh.creation.icosphere(subdivisions=3, radius=0.6).export(mesh)
    cfg = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    cfg["train"].update(data=[str(mesh.resolve())], steps=9, checkpoint_every=3)
    cfg["sampling"]["num_points"] = 5000
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def assert_run_folder_sound(run: Path) -> None:
    from data_prep.sampling import SdfSamples

    if (run / "checkpoint.pt").exists():
        assert load_torch(run / "checkpoint.pt")["sdfkit"]["kind"] == "train_checkpoint"
    if (run / "decoder.pt").exists():
        load_torch(run / "decoder.pt")
    for path in (run / "samples").glob("[!.]*.npz") if (run / "samples").is_dir() else ():
        SdfSamples.load(path)


def test_train_killed(tmp_path):
    config = tiny_config(tmp_path)
    args = ("train", str(config), "--device", "cpu", "--quiet")
    longest = run_ok(*args, "--out", str(tmp_path / "reference"))
    run = tmp_path / "killed"
    # First a kill right after the first checkpoint is written, so that the runs below resume mid-way.
    proc = sdfkit(*args, "--out", str(run))
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while not (run / "checkpoint.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert load_torch(run / "checkpoint.pt")["step"] < 9
    landed = []
    for delay in kill_delays(longest):
        resume = ("--resume",) if (run / "checkpoint.pt").exists() else ()
        landed.append(run_killed((*args, "--out", str(run), *resume), float(delay)))
        assert_run_folder_sound(run)
    assert any(landed), f"every run finished before its kill (delays {kill_delays(longest)}, run {longest:.1f} s)"
    # A kill before the first checkpoint leaves nothing to resume: the rerun starts afresh.
    resume = ("--resume",) if (run / "checkpoint.pt").exists() else ()
    run_ok(*args, "--out", str(run), *resume)
    assert_run_folder_sound(run)
    expected = load_torch(tmp_path / "reference" / "decoder.pt")["state_dict"]
    got = load_torch(run / "decoder.pt")["state_dict"]
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), atol=RESUME_TOLERANCE, rtol=0)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def assert_fit_output_sound(out: Path) -> None:
    """No output folder, or a complete one."""
    if not out.exists():
        return
    from sdfkit.fit_output import load_fitted

    fitted = load_fitted(out)
    assert fitted.mesh_path.is_file() and fitted.report["steps"] == 5


def test_fit_killed_then_concurrent_runs(tmp_path):
    """Kills at random moments; then the rerun (stale lock and temp folder present) runs beside a second fit into
    another folder, while a third into the rerun's folder refuses."""
    mesh = tmp_path / "ball.obj"
    trimesh.creation.icosphere(subdivisions=2, radius=0.5).export(mesh)
    first, second = tmp_path / "a", tmp_path / "b"
    # Kill during start-up, mesh loading, sampling and fitting (a whole fit takes 20-60 s on these CPUs).
    landed = []
    for delay in np.random.default_rng(KILL_SEED).uniform(1.0, 12.0, size=KILLS):
        landed.append(run_killed(("fit", str(mesh), "--out", str(first), *FIT_ARGS), float(delay)))
        assert_fit_output_sound(first)
    assert any(landed), "every fit finished before its kill: nothing was tested"
    # What a killed fit can leave, made certain: a lock naming a dead process, and a half-written temp folder.
    lock = tmp_path / ".a.lock"
    lock.write_text(str(dead_pid()))
    stale = tmp_path / ".a.tmp-killed"
    stale.mkdir(exist_ok=True)
    (stale / "mesh.obj").write_text("v 0 0 0\n")

    proc_a = sdfkit("fit", str(mesh), "--out", str(first), *FIT_ARGS, "--force")
    proc_b = sdfkit("fit", str(mesh), "--out", str(second), *FIT_ARGS)
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while stale.exists():  # removed once the rerun holds the lock
        assert proc_a.poll() is None, f"the rerun ended before taking its lock: {proc_a.communicate()[1]}"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lock.read_text() == str(proc_a.pid)
    code, err = finish(sdfkit("fit", str(mesh), "--out", str(first), *FIT_ARGS, "--force"))
    assert code == 1 and err.strip().count("\n") == 0
    assert err.startswith("error: another sdfkit process is writing") and str(first) in err
    for proc in (proc_a, proc_b):
        code, err = finish(proc)
        assert code == 0, err
    assert_fit_output_sound(first)
    # Neither disturbed the other: the same input and seed give the same codes and scores.
    la, lb = load_torch(first / "latents.pt"), load_torch(second / "latents.pt")
    np.testing.assert_array_equal(la["grid"]["codes"].numpy(), lb["grid"]["codes"].numpy())
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (first, second))
    assert ra["metrics"] == rb["metrics"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "ball.obj"]  # no lock, no temp folder left
