"""``sdfkit prep``: datasets, resuming, shards, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from data_prep.dataset import combine_shards, list_shapes, prep_dataset
from data_prep.sampling import SamplingConfig, SdfSamples

SMALL = SamplingConfig(num_points=4_000, num_surface=500)


def sdfkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdfkit", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "meshes"
    root.mkdir()
    for i, mesh in enumerate([trimesh.creation.icosphere(2), trimesh.creation.box(), trimesh.creation.capsule()]):
        mesh.export(root / f"shape{i}.obj")
    return root


def test_folder_is_prepared_in_parallel_and_resumes(folder, tmp_path):
    out = tmp_path / "samples"
    first = prep_dataset(folder, out, SMALL, workers=2, progress=False)
    assert len(first.written) == 3 and not first.failed
    files = sorted(out.rglob("*.npz"))
    assert len(files) == 3
    mtimes = [f.stat().st_mtime_ns for f in files]
    second = prep_dataset(folder, out, SMALL, workers=2, progress=False)
    assert len(second.skipped) == 3 and not second.written
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    # Changed settings make outputs stale.
    third = prep_dataset(folder, out, SamplingConfig(num_points=3_000, num_surface=500), workers=1, progress=False)
    assert len(third.written) == 3
    split = json.loads((out / "split.json").read_text())
    assert sorted(split["sdfkit"]["meshes"]) == ["shape0", "shape1", "shape2"]


def test_one_bad_mesh_does_not_stop_the_others(folder, tmp_path):
    (folder / "broken.obj").write_text("garbage\n")
    summary = prep_dataset(folder, tmp_path / "out", SMALL, workers=2, progress=False)
    assert len(summary.written) == 3
    assert list(summary.failed) == [str(folder / "broken.obj")]
    assert not (tmp_path / "out" / "meshes" / "broken.npz").exists()


def test_shapenet_layout_synsets_and_shards(tmp_path):
    root = tmp_path / "ShapeNet"
    for synset, models in {"02691156": ["a1", "a2"], "03001627": ["c1"]}.items():
        for model in models:
            d = root / synset / model / "models"
            d.mkdir(parents=True)
            trimesh.creation.box().export(d / "model_normalized.obj")
    assert [s.name for s in list_shapes(root, ["03001627"])] == ["c1"]
    out = tmp_path / "out"
    for i in range(2):
        prep_dataset(root, out, SMALL, workers=1, shard=f"{i}/2", progress=False)
    merged = json.loads(combine_shards(out).read_text())
    assert merged["sdfkit"] == {"02691156": ["a1", "a2"], "03001627": ["c1"]}
    assert len(list(out.rglob("*.npz"))) == 3


def test_cli_prep_writes_nine_shapes(shared_meshes, tmp_path):
    proc = sdfkit("prep", str(shared_meshes / "train"), "--out", str(tmp_path / "s"), "--points", "2000", "--quiet")
    assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / "s").rglob("*.npz"))
    assert len(files) == 9
    s = SdfSamples.load(files[0])
    assert s.points.shape == (2000, 3) and np.isfinite(s.sdf).all()


STRIPS_PLY = (b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
              b"element tristrips 1\nproperty list int int vertex_indices\nend_header\n"
              b"0 0 0\n1 0 0\n0 1 0\n0 0 1\n4 0 1 2 3\n")
NAN_OBJ = "v 0 0 0\nv nan 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\nf 1 2 4\nf 2 3 4\n"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.obj", None, "not found"),
        ("empty.obj", b"", "empty"),
        ("text.obj", b"not a mesh", "no faces"),
        ("flat.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "flat"),
        ("nan.obj", NAN_OBJ.encode(), "NaN"),
        ("strips.ply", STRIPS_PLY, "no faces"),
        ("nomesh", "dir", "no meshes"),
    ],
)
def test_cli_bad_input_is_one_line_and_leaves_nothing(tmp_path, name, content, message):
    bad = tmp_path / name
    if content == "dir":
        bad.mkdir()
    elif content is not None:
        bad.write_bytes(content)
    out = tmp_path / "out"
    proc = sdfkit("prep", str(bad), "--out", str(out), "--quiet", "--workers", "1")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr
    assert not out.exists() or not list(out.rglob("*.npz"))
