"""Mesh loading, cleaning and normalisation (data_prep.mesh)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from data_prep.mesh import (
    Normalization,
    clean_mesh,
    file_hash,
    find_meshes,
    fit_normalization,
    load_mesh,
    normalize_mesh,
    read_mesh,
)
from sdfkit.errors import SdfkitError

#: Geometry survives a round trip through a file format to this (text formats print ~8 digits).
FORMAT_TOL = 1e-5


def _box() -> trimesh.Trimesh:
    return trimesh.creation.box(extents=[2.0, 1.0, 0.5])


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".off", ".glb"])
def test_every_format_loads_the_same_closed_mesh(tmp_path, suffix):
    box = _box()
    path = tmp_path / f"box{suffix}"
    box.export(path)
    mesh = load_mesh(path)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(1.0, rel=FORMAT_TOL)
    np.testing.assert_allclose(mesh.bounds, box.bounds, atol=FORMAT_TOL)


def test_a_gltf_finds_its_buffers_beside_it_and_is_hashed_as_read(tmp_path):
    """The file is read once, from memory: a .gltf's side files are still resolved from its folder."""
    for name, data in _box().export(file_type="gltf").items():
        (tmp_path / name).write_bytes(data)
    mesh, digest = read_mesh(tmp_path / "model.gltf")
    assert mesh.volume == pytest.approx(1.0, rel=FORMAT_TOL)
    assert digest == file_hash(tmp_path / "model.gltf")


def test_scene_is_flattened_with_node_transforms(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(_box(), node_name="a", transform=trimesh.transformations.translation_matrix([5, 0, 0]))
    scene.add_geometry(trimesh.creation.icosphere(radius=0.5), node_name="b")
    path = tmp_path / "scene.glb"
    scene.export(path)
    mesh = load_mesh(path)
    assert mesh.bounds[1][0] == pytest.approx(6.0, abs=FORMAT_TOL)  # the box moved by its node
    assert mesh.bounds[0][0] == pytest.approx(-0.5, abs=1e-3)


def test_seams_are_merged(tmp_path):
    # Every face gets its own three vertices (as a UV-unwrapped export does); cleaning reconnects them.
    sphere = trimesh.creation.icosphere(subdivisions=2)
    soup = trimesh.Trimesh(sphere.vertices[sphere.faces].reshape(-1, 3), np.arange(len(sphere.faces) * 3).reshape(-1, 3), process=False)
    assert not soup.is_watertight
    cleaned = clean_mesh(soup)
    assert cleaned.is_watertight
    assert len(cleaned.vertices) == len(sphere.vertices)


def test_inverted_closed_mesh_is_flipped(tmp_path):
    box = _box()
    box.invert()
    assert box.volume < 0
    path = tmp_path / "inverted.obj"
    box.export(path)
    assert load_mesh(path).volume == pytest.approx(1.0, rel=FORMAT_TOL)


def test_degenerate_and_duplicate_faces_are_dropped():
    box = _box()
    faces = np.vstack([box.faces, box.faces[:2], [[0, 0, 1]]])
    cleaned = clean_mesh(trimesh.Trimesh(box.vertices, faces, process=False))
    assert len(cleaned.faces) == len(box.faces)


def test_normalization_puts_farthest_vertex_at_radius(sphere_mesh_file):
    mesh = load_mesh(sphere_mesh_file)
    for radius in (1.0, 0.9):
        unit, norm = normalize_mesh(mesh, radius)
        v = np.asarray(unit.vertices)
        np.testing.assert_allclose((v.min(0) + v.max(0)) / 2, 0.0, atol=1e-12)
        assert np.linalg.norm(v, axis=1).max() == pytest.approx(radius)
        np.testing.assert_allclose(norm.from_unit(v), mesh.vertices, atol=1e-12)
        assert Normalization.from_dict(norm.to_dict()) == norm
    assert fit_normalization(mesh).center == pytest.approx((1.0, 2.0, 3.0), abs=1e-9)


def test_scene_parts_stay_separate_parts(tmp_path):
    scene = trimesh.Scene([trimesh.creation.box(), trimesh.creation.icosphere().apply_translation([3, 0, 0])])
    path = tmp_path / "scene.glb"
    scene.export(path)
    assert len(load_mesh(path).split(only_watertight=False)) == 2


def test_real_mesh_normalisation_round_trip(shared_meshes):
    mesh = load_mesh(shared_meshes / "train" / "hammer.obj")
    unit, norm = normalize_mesh(mesh)
    assert np.linalg.norm(unit.vertices, axis=1).max() == pytest.approx(1.0)
    np.testing.assert_allclose(norm.from_unit(unit.vertices), mesh.vertices, atol=1e-9)
    assert fit_normalization(mesh, radius=0.5).scale == pytest.approx(2 * norm.scale)


def test_find_meshes_and_hash(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.obj", "sub/a.ply", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_meshes(tmp_path)] == ["b.obj", "sub/a.ply"]
    assert file_hash(tmp_path / "b.obj") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


# ---------------------------------------------------------------- bad input

def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD_MESHES = {
    "missing.obj": (None, "mesh file not found"),
    "empty.obj": ("", "mesh file is empty"),
    "flat.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\nf 2 4 3\n", "is flat"),
    "nan.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\nv nan 1 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n", "NaN or infinite"),
    "inf.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\nv inf 1 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n", "NaN or infinite"),
    "points.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "has no faces"),
    "strips.ply": ("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                   "element tristrips 1\nproperty list int int vertex_indices\nend_header\n"
                   "0 0 0\n1 0 0\n0 1 0\n0 0 1\n6 0 1 2 3 0 1\n", "triangle strips are not supported"),
    "mesh.xyz": ("0 0 0\n", "unsupported mesh format"),
    "broken.glb": ("glTF this is not", "cannot read mesh"),
}


@pytest.mark.parametrize("name", sorted(BAD_MESHES))
def test_bad_meshes_raise_one_line(tmp_path, name):
    text, message = BAD_MESHES[name]
    path = tmp_path / name if text is None else _write(tmp_path / name, text)
    with pytest.raises(SdfkitError, match=message) as info:
        load_mesh(path)
    assert "\n" not in str(info.value)


def test_directory_is_not_a_mesh(tmp_path):
    with pytest.raises(SdfkitError, match="got a directory"):
        load_mesh(tmp_path)
