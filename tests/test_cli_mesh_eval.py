"""``sdfkit mesh`` and ``sdfkit eval`` end to end, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfkit.metrics import METRIC_KEYS

from helpers import run_sdfkit


def sdfkit(*args: object) -> subprocess.CompletedProcess:
    return run_sdfkit(*args, timeout=300)  # small meshes, low resolutions


def in_process(monkeypatch, capsys, *args: object) -> subprocess.CompletedProcess:
    """``sdfkit ARGS`` through :func:`sdfkit.cli.main` (its error handling included), without a new interpreter."""
    from sdfkit.cli import main

    monkeypatch.setattr(sys, "argv", ["sdfkit", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, info.value.code, captured.out, captured.err)


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_mesh_exact_remeshes_in_the_input_units(sphere_mesh_file: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "remeshed.obj"
    proc = sdfkit("mesh", "--exact", sphere_mesh_file, out, "--resolution", 48)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    result, source = trimesh.load(out, force="mesh"), trimesh.load(sphere_mesh_file, force="mesh")
    np.testing.assert_allclose(result.bounds, source.bounds, atol=0.02)  # centre (1, 2, 3), radius 0.5
    assert result.volume == pytest.approx(source.volume, rel=0.02)  # positive: faces point outwards
    dense = tmp_path / "dense.obj"
    proc = in_process(monkeypatch, capsys, "mesh", "--exact", sphere_mesh_file, dense, "--resolution", 48, "--no-coarse-to-fine")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(trimesh.load(dense, force="mesh", process=False).vertices,
                               trimesh.load(out, force="mesh", process=False).vertices, atol=1e-6)


def test_mesh_options_level_smooth_and_components(tmp_path: Path, monkeypatch, capsys):
    pair = trimesh.util.concatenate([trimesh.creation.icosphere(subdivisions=3, radius=1.0),
                                     trimesh.creation.icosphere(subdivisions=2, radius=0.2).apply_translation([2.5, 0, 0])])
    src = tmp_path / "pair.ply"
    pair.export(src)
    largest = tmp_path / "largest.ply"
    proc = in_process(monkeypatch, capsys, "mesh", "--exact", src, largest, "--resolution", 64, "--keep-largest", "--level", 0.05, "--smooth", 3)
    assert proc.returncode == 0, proc.stderr
    result = trimesh.load(largest, force="mesh")
    assert len(result.split(only_watertight=False)) == 1
    # Iso level 0.05 (input units) around the unit sphere: radius about 1.05.
    assert np.linalg.norm(result.vertices, axis=1).mean() == pytest.approx(1.05, abs=0.01)


def test_mesh_errors_are_one_line(sphere_mesh_file: Path, tmp_path: Path, monkeypatch, capsys):
    # Once through a real interpreter: the console entry point turns the error into one line and exit 1.
    assert_one_line_error(sdfkit("mesh", "--exact", tmp_path / "none.obj", tmp_path / "o.ply"), "not found")
    run = lambda *args: in_process(monkeypatch, capsys, *args)
    assert_one_line_error(run("mesh", "--exact", sphere_mesh_file, tmp_path / "o.xyz"), "choose an extension")
    garbage = tmp_path / "garbage.obj"
    garbage.write_text("this is not a mesh\n")
    proc = run("mesh", "--exact", garbage, tmp_path / "o.ply")
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert_one_line_error(run("mesh", "--exact", sphere_mesh_file, tmp_path / "o.ply", "--resolution", 4), "resolution")
    assert_one_line_error(run("mesh", "--exact", sphere_mesh_file, tmp_path / "o.ply", "--level", 5, "--resolution", 32), "no surface at level")
    assert_one_line_error(run("mesh", tmp_path, tmp_path / "o.ply"), "no latents.pt")
    assert_one_line_error(run("mesh", sphere_mesh_file, tmp_path / "o.ply"), "--exact")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("o.", ".o."))]


def test_eval_of_a_mesh_against_itself_and_json(sphere_mesh_file: Path, tmp_path: Path, monkeypatch, capsys):
    js = tmp_path / "m.json"
    proc = in_process(monkeypatch, capsys, "eval", sphere_mesh_file, sphere_mesh_file, "--json", js, "--surface-points", 2000,
                  "--volume-points", 20000)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(js.read_text())
    assert tuple(metrics) == METRIC_KEYS
    assert metrics["chamfer"] < 1e-12 and metrics["iou"] == 1.0 and metrics["fscore_05pct"] == 1.0
    assert "chamfer" in proc.stdout and "iou" in proc.stdout  # the table


def test_eval_errors_are_one_line(sphere_mesh_file: Path, tmp_path: Path, monkeypatch, capsys):
    run = lambda *args: in_process(monkeypatch, capsys, *args)
    assert_one_line_error(run("eval", tmp_path / "none.obj", sphere_mesh_file), "not found")
    assert_one_line_error(run("eval", sphere_mesh_file, sphere_mesh_file, "--surface-points", 0), "positive")
    assert_one_line_error(run("eval", sphere_mesh_file, sphere_mesh_file, "--json", tmp_path / "m.txt"), ".json")
    assert not list(tmp_path.glob("m.*"))


@pytest.fixture(scope="module")
def two_balls_fit(tmp_path_factory) -> Path:
    """A fit of two unit balls 4 apart (coarse and quick): the input supports both of its parts."""
    import sdfkit as api

    folder = tmp_path_factory.mktemp("two_balls")
    balls = [trimesh.creation.icosphere(subdivisions=3).apply_translation((x, 0.0, 0.0)) for x in (-2.0, 2.0)]
    trimesh.util.concatenate(balls).export(folder / "balls.obj")
    api.fit_mesh(folder / "balls.obj", folder / "fit", steps=60, grid_resolution=16, resolution=48)
    return folder / "fit"


def _parts(path: Path) -> list[trimesh.Trimesh]:
    mesh = trimesh.load(path, force="mesh", process=False)
    return sorted(mesh.split(only_watertight=False), key=lambda part: part.centroid[0])


def _without_right_support(fit: Path, out: Path, keep: bool = True) -> Path:
    """A copy of the fit whose stored surface points lack the right ball's (or, ``keep=False``, any at all)."""
    import shutil

    import torch

    shutil.copytree(fit, out)
    payload = torch.load(out / "latents.pt", weights_only=True)
    if keep:
        payload["support"] = payload["support"][payload["support"][:, 0] < 0]
    else:
        del payload["support"]
    torch.save(payload, out / "latents.pt")
    return out


def test_mesh_of_a_fit_keeps_what_the_input_supports_as_the_fit_did(two_balls_fit: Path, tmp_path: Path,
                                                                    monkeypatch, capsys):
    import sdfkit as api

    fit_mesh_file = two_balls_fit / "mesh.obj"
    proc = in_process(monkeypatch, capsys, "mesh", two_balls_fit, tmp_path / "same.obj", "--resolution", 48,
                      "--faces", 0)
    assert proc.returncode == 0, proc.stderr
    # The same field, lattice and rule: the fit's own mesh again, both balls, and the same stray parts dropped.
    strays = json.loads((two_balls_fit / "report.json").read_text())["unsupported_parts"]["removed"]
    assert (f"dropped {strays} part(s)" in proc.stdout) == (strays > 0)
    again, written = trimesh.load(tmp_path / "same.obj", process=False), trimesh.load(fit_mesh_file, process=False)
    assert len(again.faces) == len(written.faces) and np.allclose(again.bounds, written.bounds, atol=1e-5)
    assert len(_parts(fit_mesh_file)) == 2

    # The right ball's surface points taken away: its part is unsupported, dropped unless asked to be kept.
    lone = _without_right_support(two_balls_fit, tmp_path / "lone")
    proc = in_process(monkeypatch, capsys, "mesh", lone, tmp_path / "left.obj", "--resolution", 48, "--faces", 0)
    assert proc.returncode == 0, proc.stderr
    assert f"dropped {strays + 1} part(s)" in proc.stdout
    (left,) = _parts(tmp_path / "left.obj")
    assert left.bounds[1][0] < 0
    proc = in_process(monkeypatch, capsys, "mesh", lone, tmp_path / "both.obj", "--resolution", 48, "--faces", 0,
                      "--keep-unsupported")
    assert proc.returncode == 0 and len(_parts(tmp_path / "both.obj")) == strays + 2
    sdf = api.load(lone)
    assert len(sdf.mesh(48).split(only_watertight=False)) == 1
    assert len(sdf.mesh(48, keep_unsupported=True).split(only_watertight=False)) == strays + 2

    # A latents file without surface points keeps every part and says so.
    old = _without_right_support(two_balls_fit, tmp_path / "old", keep=False)
    proc = in_process(monkeypatch, capsys, "mesh", old, tmp_path / "old.obj", "--resolution", 48, "--faces", 0)
    assert proc.returncode == 0 and "every part kept" in proc.stdout
    assert len(_parts(tmp_path / "old.obj")) == strays + 2
    proc = in_process(monkeypatch, capsys, "mesh", fit_mesh_file, tmp_path / "x.obj", "--exact", "--keep-unsupported")
    assert_one_line_error(proc, "--keep-unsupported applies to a fit output folder")
