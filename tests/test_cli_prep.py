"""``sdfkit prep``: datasets, resuming, shards, and one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh

from data_prep.dataset import combine_shards, list_shapes, prep_dataset
from data_prep.sampling import SamplingConfig, SdfSamples

from helpers import run_sdfkit

SMALL = SamplingConfig(num_points=4_000, num_surface=500)


def sdfkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_sdfkit(*args, cwd=cwd, timeout=300)


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
    # Changed settings make outputs stale: they are replaced only with force, like every output sdfkit writes.
    refused = prep_dataset(folder, out, SamplingConfig(num_points=3_000, num_surface=500), workers=1, progress=False)
    assert not refused.written and len(refused.failed) == 3
    assert all("--force" in reason for reason in refused.failed.values())
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    third = prep_dataset(folder, out, SamplingConfig(num_points=3_000, num_surface=500), workers=1, force=True,
                         progress=False)
    assert len(third.written) == 3
    split = json.loads((out / "split.json").read_text())
    assert split == {"meshes": {".": ["shape0", "shape1", "shape2"]}}
    assert sorted(f.name for f in out.glob("*.npz")) == ["shape0.npz", "shape1.npz", "shape2.npz"]
    # A changed mesh file makes its own output stale, and only that one.
    trimesh.creation.icosphere(1).export(folder / "shape0.obj")
    fourth = prep_dataset(folder, out, SamplingConfig(num_points=3_000, num_surface=500), workers=1, progress=False)
    assert list(fourth.failed) == [str(folder / "shape0.obj")] and len(fourth.skipped) == 2
    forced = prep_dataset(folder, out, SamplingConfig(num_points=3_000, num_surface=500), workers=1, force=True, progress=False)
    assert len(forced.written) == 3


def test_one_bad_mesh_does_not_stop_the_others(folder, tmp_path):
    (folder / "broken.obj").write_text("garbage\n")
    summary = prep_dataset(folder, tmp_path / "out", SMALL, workers=2, progress=False)
    assert len(summary.written) == 3
    assert list(summary.failed) == [str(folder / "broken.obj")]
    assert not (tmp_path / "out" / "broken.npz").exists()
    assert "broken" not in (tmp_path / "out" / "split.json").read_text()


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
    merged = json.loads(combine_shards(out)[0].read_text())
    assert merged == {"ShapeNetV2": {"02691156": ["a1", "a2"], "03001627": ["c1"]}}
    # Shard k takes sorted indices k, k + n, ...: a1 and c1 in shard 0, a2 in shard 1.
    assert json.loads((out / "split.shard-0-of-2.json").read_text()) == {"ShapeNetV2": {"02691156": ["a1"], "03001627": ["c1"]}}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz")) == ["02691156/a1.npz", "02691156/a2.npz", "03001627/c1.npz"]
    # A split file read back selects shapes; unknown entries are reported.
    split = tmp_path / "pick.json"
    split.write_text(json.dumps({"ShapeNetV2": {"02691156": ["a2", "zz"]}}))
    picked = prep_dataset(root, tmp_path / "picked", SMALL, workers=1, split=split, progress=False)
    assert picked.written == ["02691156/a2.npz"] and list(picked.failed) == ["02691156/zz"]


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
        ("strips.ply", STRIPS_PLY, "triangle strips"),
        ("inf.obj", NAN_OBJ.replace("nan", "inf").encode(), "infinite"),
        ("notes.docx", b"hello", "unsupported"),
        ("notes.txt", b"hello", "cannot read point cloud"),  # .txt is a point-cloud format (x y z per line)
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


def test_cli_dataset_with_a_bad_mesh_prints_summary_and_fails(folder, tmp_path):
    (folder / "broken.obj").write_text("garbage\n")
    proc = sdfkit("prep", str(folder), "--out", str(tmp_path / "out"), "--points", "2000", "--quiet")
    assert proc.returncode == 1
    assert "3 written, 0 up to date, 1 failed" in proc.stdout and "broken.obj" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert len(list((tmp_path / "out").glob("*.npz"))) == 3


def test_cli_options_config_shards_and_reproducibility(folder, tmp_path):
    config = tmp_path / "sampling.yaml"
    config.write_text("num_surface: 77\nnoise_stds: [0.02]\nnoise_weights: [1.0]\n")
    out = tmp_path / "out"
    for i in range(2):
        proc = sdfkit("prep", str(folder), "--out", str(out), "--config", str(config), "--points", "1500",
                      "--volume", "bbox", "--seed", "3", "--shard", f"{i}/2", "--workers", "1", "--quiet")
        assert proc.returncode == 0, proc.stderr
        # The last shard to finish merges every shard's split file and manifest.
        assert ("every shard has finished" in proc.stdout) == (i == 1)
    assert json.loads((out / "split.json").read_text()) == {"meshes": {".": ["shape0", "shape1", "shape2"]}}
    (out / "split.json").unlink()
    proc = sdfkit("prep", "--combine", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "split.json").read_text()) == {"meshes": {".": ["shape0", "shape1", "shape2"]}}
    samples = SdfSamples.load(out / "shape1.npz")
    assert samples.points.shape == (1500, 3) and samples.surface_points.shape == (77, 3)
    assert samples.settings["noise_stds"] == [0.02] and samples.settings["volume"] == "bbox" and samples.settings["seed"] == 3
    # The same seed and mesh give bit-identical samples, whatever the worker count.
    again = prep_dataset(folder / "shape1.obj", tmp_path / "again", SamplingConfig(
        num_points=1500, num_surface=77, noise_stds=(0.02,), noise_weights=(1.0,), volume="bbox", seed=3), workers=2, progress=False)
    other = SdfSamples.load(tmp_path / "again" / again.written[0])
    assert np.array_equal(other.points, samples.points) and np.array_equal(other.sdf, samples.sdf)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shard", "2/2"], "--shard"),
        (["--method", "fast"], "sampling method must be exact or mesh-to-sdf"),
        (["--preset", "nope"], "unknown sampling preset"),
        (["--config", "missing.yaml"], "config file not found"),
        (["--synsets", "02691156"], "--synsets applies to ShapeNet roots"),
        (["--split", "missing.json"], "split file not found"),
    ],
)
def test_cli_bad_options_are_one_line(folder, tmp_path, args, message):
    proc = sdfkit("prep", str(folder), "--out", str(tmp_path / "out"), "--quiet", *args)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_shard_manifests_merge_into_the_unsharded_manifest(folder, tmp_path):
    (folder / "broken.obj").write_text("garbage\n")  # a failed mesh keeps its row in the merged manifest
    whole = tmp_path / "whole"
    prep_dataset(folder, whole, SMALL, workers=1, progress=False)
    out = tmp_path / "sharded"
    first = prep_dataset(folder, out, SMALL, workers=1, shard="1/3", progress=False)
    assert not first.combined and not (out / "manifest.json").exists()
    second = prep_dataset(folder, out, SMALL, workers=1, shard="0/3", progress=False)
    assert not second.combined
    last = prep_dataset(folder, out, SMALL, workers=1, shard="2/3", progress=False)
    assert [p.name for p in last.combined] == ["split.json", "manifest.csv", "manifest.json"]
    for name in ("manifest.csv", "manifest.json", "split.json"):
        assert (out / name).read_text() == (whole / name).read_text(), name
    # An explicit --combine writes the same files again.
    for name in ("manifest.csv", "manifest.json", "split.json"):
        (out / name).unlink()
    proc = sdfkit("prep", "--combine", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("manifest.csv", "manifest.json", "split.json"):
        assert (out / name).read_text() == (whole / name).read_text(), name


def test_combine_refuses_an_unreadable_shard_manifest(folder, tmp_path):
    for i in range(2):
        prep_dataset(folder, tmp_path, SMALL, workers=1, shard=f"{i}/2", progress=False)
    (tmp_path / "manifest.shard-1-of-2.json").write_text("{not json")
    proc = sdfkit("prep", "--combine", "--out", str(tmp_path))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "manifest.shard-1-of-2.json" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_combine_without_shards_fails(tmp_path):
    proc = sdfkit("prep", "--combine", "--out", str(tmp_path))
    assert proc.returncode == 1 and "no shard split files" in proc.stderr
    (tmp_path / "split.shard-0-of-3.json").write_text("{}")
    proc = sdfkit("prep", "--combine", "--out", str(tmp_path))
    assert proc.returncode == 1 and "shard 1/3, 2/3 has not finished" in proc.stderr
    assert not (tmp_path / "split.json").exists()


@pytest.mark.slow  # mesh-to-sdf renders 100 views per shape
def test_cli_mesh_to_sdf_method(shared_meshes, tmp_path):
    proc = sdfkit("prep", str(shared_meshes / "val" / "sphere.obj"), "--out", str(tmp_path), "--method", "mesh-to-sdf",
                  "--points", "2000", "--quiet")
    assert proc.returncode == 0, proc.stderr
    samples = SdfSamples.load(tmp_path / "sphere.npz")
    assert samples.settings["method"] == "mesh-to-sdf"
    radius = np.linalg.norm(samples.points, axis=1)
    clear = np.abs(radius - 1.0) > 0.02
    assert np.mean((samples.sdf[clear] < 0) == (radius[clear] < 1.0)) > 0.95
