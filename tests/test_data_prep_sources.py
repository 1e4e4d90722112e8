"""Data entries -> shapes: folders, glob patterns, prep output folders, sdfkit's and DeepSDF's split files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import trimesh

from data_prep.dataset import prep_dataset
from data_prep.sampling import SamplingConfig
from data_prep.sources import resolve_data, resolve_shapes, source_mesh
from sdfkit.config import load_settings
from sdfkit.errors import SdfkitError

REPO = Path(__file__).resolve().parents[1]
CHAIRS = ("scopia_chair3.ply", "scopia_ext_chair.ply")


@pytest.fixture
def chair_folder(shared_meshes, tmp_path) -> Path:
    folder = tmp_path / "chairs"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(shared_meshes / "chairs" / "val" / CHAIRS[0], folder / CHAIRS[0])
    shutil.copy(shared_meshes / "chairs" / "val" / CHAIRS[1], folder / "sub" / CHAIRS[1])
    return folder


def test_folder_and_glob(chair_folder):
    shapes = resolve_shapes(chair_folder)
    assert [(s.group, s.name) for s in shapes] == [(".", "scopia_chair3"), ("sub", "scopia_ext_chair")]
    assert resolve_data([str(chair_folder / "**" / "*.ply")]) == [chair_folder / CHAIRS[0],
                                                                  chair_folder / "sub" / CHAIRS[1]]
    assert resolve_data(["sub/*.ply", "sub/*.ply"], base=chair_folder) == [chair_folder / "sub" / CHAIRS[1]]
    with pytest.raises(SdfkitError, match="no file matches"):
        resolve_data(["*.stl"], base=chair_folder)


def test_prep_output_folder_and_its_split_file(chair_folder, tmp_path):
    out = tmp_path / "samples"
    prep_dataset(chair_folder, out, SamplingConfig(num_points=2000, num_surface=500), workers=1, progress=False)
    files = resolve_data([str(out)])
    assert files == [out / "scopia_chair3.npz", out / "sub" / "scopia_ext_chair.npz"]
    assert resolve_data([str(out / "split.json")]) == files
    assert [source_mesh(f) for f in files] == [(chair_folder / CHAIRS[0]).resolve(),
                                               (chair_folder / "sub" / CHAIRS[1]).resolve()]


def test_deepsdf_split_over_a_shapenet_layout(shared_meshes, tmp_path):
    root = tmp_path / "ShapeNetCore.v2"
    for model in ("aaa", "bbb"):
        mesh_dir = root / "03001627" / model / "models"
        mesh_dir.mkdir(parents=True)
        trimesh.load(shared_meshes / "chairs" / "val" / CHAIRS[0]).export(mesh_dir / "model_normalized.obj")
    split = root / "chairs_train.json"
    split.write_text(json.dumps({"ShapeNetV2": {"03001627": ["bbb"]}}))
    shapes = resolve_shapes(split)
    assert [(s.dataset, s.group, s.name) for s in shapes] == [("ShapeNetV2", "03001627", "bbb")]
    assert shapes[0].path == root / "03001627" / "bbb" / "models" / "model_normalized.obj"
    split.write_text(json.dumps({"ShapeNetV2": {"03001627": ["bbb", "zzz"]}}))
    with pytest.raises(SdfkitError, match="1 listed shape.*03001627/zzz"):
        resolve_shapes(split)


@pytest.mark.parametrize("category,count", [("airplanes", 76), ("chairs", 43)])
def test_category_configs_train_on_their_train_split(shared_meshes, category, count, monkeypatch):
    monkeypatch.chdir(REPO)  # config paths are relative to the repository root, as in configs/shipped.yaml
    cfg = load_settings(REPO / "configs" / f"{category}.yaml")
    files = resolve_data(cfg.train.data)
    assert len(files) == count
    assert all(f.parent.resolve() == (shared_meshes / category / "train").resolve() for f in files)


def test_training_on_a_folder_makes_one_scene_per_mesh(chair_folder, tmp_path):
    import dataclasses

    import torch

    from sdfkit.train import train

    cfg = load_settings(REPO / "configs" / "tiny.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=[str(chair_folder)], steps=2,
                                                             checkpoint_every=2, log_every=1))
    train(cfg, tmp_path / "run", device="cpu", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert len(state["scenes"]) == 2
