"""Mesh loading, cleaning and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from data_prep.mesh import Normalization, fit_normalization, load_mesh, normalize_mesh
from sdfkit.errors import SdfkitError


def test_uv_split_vertices_are_merged(tmp_path):
    # Every face with its own three vertices: a "triangle soup" as textured exports arrive.
    box = trimesh.creation.box()
    soup = trimesh.Trimesh(box.vertices[box.faces].reshape(-1, 3), np.arange(len(box.faces) * 3).reshape(-1, 3), process=False)
    path = tmp_path / "soup.obj"
    soup.export(path)
    mesh = load_mesh(path)
    assert len(mesh.vertices) == 8 and mesh.is_watertight


def test_inverted_orientation_is_fixed(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=2)
    inverted = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1], process=False)
    assert inverted.volume < 0
    path = tmp_path / "inverted.ply"
    inverted.export(path)
    assert load_mesh(path).volume > 0


def test_scenes_are_flattened(tmp_path):
    scene = trimesh.Scene([trimesh.creation.box(), trimesh.creation.icosphere().apply_translation([3, 0, 0])])
    path = tmp_path / "scene.glb"
    scene.export(path)
    mesh = load_mesh(path)
    assert len(mesh.split(only_watertight=False)) == 2


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".off", ".glb"])
def test_every_format_loads(tmp_path, suffix):
    path = tmp_path / f"box{suffix}"
    trimesh.creation.box(extents=(1, 2, 3)).export(path)
    mesh = load_mesh(path)
    np.testing.assert_allclose(mesh.extents, [1, 2, 3], atol=1e-6)


def test_normalisation_round_trip_and_unit_sphere(shared_meshes):
    mesh = load_mesh(shared_meshes / "train" / "hammer.obj")
    unit, norm = normalize_mesh(mesh)
    assert np.linalg.norm(unit.vertices, axis=1).max() == pytest.approx(1.0)
    np.testing.assert_allclose((unit.bounds[0] + unit.bounds[1]) / 2, 0.0, atol=1e-9)
    np.testing.assert_allclose(norm.from_unit(unit.vertices), mesh.vertices, atol=1e-9)
    again = Normalization.from_dict(norm.to_dict())
    assert again == norm
    assert fit_normalization(mesh, radius=0.5).scale == pytest.approx(2 * norm.scale)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"hello, I am not a mesh\n", "no faces"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\nf 2 4 3\n", "flat"),
        (b"v 0 0 0\nv 1 0 nan\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\nf 1 2 4\nf 2 3 4\n", "NaN"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n", "no faces"),
    ],
)
def test_bad_meshes_raise_one_line(tmp_path, content, message):
    path = tmp_path / "bad.obj"
    path.write_bytes(content)
    with pytest.raises(SdfkitError, match=message) as info:
        load_mesh(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SdfkitError, match="not found"):
        load_mesh(tmp_path / "nothing.obj")
    with pytest.raises(SdfkitError, match="directory"):
        load_mesh(tmp_path)
    with pytest.raises(SdfkitError, match="unsupported"):
        load_mesh(__file__)
