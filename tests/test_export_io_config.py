"""Export formats, atomic writes, safe checkpoint loading, strict configs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from data_prep.yaml_io import load_config
from sdfkit.config import SdfkitConfig, TrainConfig, load_settings
from sdfkit.errors import SdfkitError
from sdfkit.export import export_mesh
from sdfkit.io import atomic_write_text, load_torch, save_torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".glb", ".off"])
def test_export_formats_round_trip(tmp_path, suffix):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    path = export_mesh(mesh, tmp_path / f"m{suffix}")
    back = trimesh.load(path, force="mesh")
    assert len(back.faces) == len(mesh.faces)
    assert back.volume == pytest.approx(mesh.volume, rel=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == [f"m{suffix}"]  # no temporary left


def test_export_refuses_unknown_formats(tmp_path):
    with pytest.raises(SdfkitError, match="choose an extension"):
        export_mesh(trimesh.creation.box(), tmp_path / "m.xyz")
    assert not list(tmp_path.iterdir())


def test_failed_atomic_write_leaves_nothing(tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o500)
    try:
        if target.stat().st_mode & 0o200 or sys.platform == "win32":
            pytest.skip("permissions not enforced")
        import os

        if os.geteuid() == 0:
            pytest.skip("root ignores directory permissions")
        with pytest.raises(SdfkitError, match="cannot write"):
            atomic_write_text(target / "x.txt", "hi")
    finally:
        target.chmod(0o700)
    assert not list(target.iterdir())


def test_checkpoints_load_weights_only(tmp_path):
    save_torch({"sdfkit": {"kind": "x"}, "w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_torch(tmp_path / "ok.pt")["w"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"sdfkit": {}, "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(SdfkitError, match="not a valid sdfkit file"):
        load_torch(tmp_path / "evil.pt")
    (tmp_path / "trunc.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:50])
    with pytest.raises(SdfkitError):
        load_torch(tmp_path / "trunc.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(SdfkitError, match="not an sdfkit file"):
        load_torch(tmp_path / "foreign.pt")


def test_shipped_configs_load():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        cfg = load_settings(path)
        assert cfg.name == path.stem


@pytest.mark.parametrize(
    "text, message",
    [
        ("model: {hiden: 3}\n", "unknown config key 'model.hiden'"),
        ("bogus: 1\n", "unknown config key 'bogus'"),
        ("model: {hidden: wide}\n", "'model.hidden' must be an integer"),
        ("sampling: {volume: cube}\n", "'sampling.volume' must be one of"),
        ("train: {data: not-a-list}\n", "'train.data' must be a list"),
        ("!!python/object/apply:os.system ['echo pwned']\n", "cannot parse config"),
        ("model: [1, 2\n", "cannot parse config"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(SdfkitError, match=message.replace("[", r"\[")):
        load_config(SdfkitConfig, path)


def test_cli_reports_a_bad_config_in_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {stepz: 3}\n")
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "train", str(path), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip() == f"error: unknown config key 'train.stepz' (known in this section: {', '.join(sorted(f.name for f in dataclasses.fields(TrainConfig)))})"
    assert not (tmp_path / "run").exists()


def test_cli_mesh_exact_and_eval(shared_meshes, tmp_path):
    src = shared_meshes / "val" / "torus.obj"
    out = tmp_path / "torus.ply"
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "mesh", "--exact", str(src), str(out), "--resolution", "96"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    js = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "eval", str(out), str(src), "--json", str(js),
                           "--surface-points", "5000", "--volume-points", "100000"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    m = json.loads(js.read_text())
    assert m["iou"] > 0.99 and m["chamfer"] < 1e-5
    gt = trimesh.load(src, force="mesh")
    np.testing.assert_allclose(trimesh.load(out).bounds, gt.bounds, atol=0.02 * np.abs(gt.bounds).max())
    bad = subprocess.run([sys.executable, "-m", "sdfkit", "eval", str(tmp_path / "none.obj"), str(src)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("error: mesh file not found")
    bad = subprocess.run([sys.executable, "-m", "sdfkit", "mesh", "--exact", str(src), str(tmp_path / "x.abc")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "choose an extension" in bad.stderr and not (tmp_path / "x.abc").exists()
