"""Mesh export: every format round-trips the geometry, writes are atomic, bad requests are one-line errors;
simplification reaches its face target close to the full mesh, and fit and mesh write and report it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfkit.errors import SdfkitError
from sdfkit.export import FORMATS, check_faces, check_format, export_mesh, simplification_chamfer, simplify_mesh

#: Text formats round vertex coordinates; binary ones keep float32 at least.
POSITION_ATOL = 1e-5


def outward_sphere() -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    return mesh.apply_translation([1.5, -2.0, 0.25])


@pytest.mark.parametrize("suffix", FORMATS)
def test_every_format_round_trips_positions_and_orientation(tmp_path: Path, suffix: str):
    mesh = outward_sphere()
    out = export_mesh(mesh, tmp_path / f"shape{suffix.upper() if suffix == '.obj' else suffix}")
    back = trimesh.load(out, force="mesh", process=True)
    assert len(back.faces) == len(mesh.faces)
    np.testing.assert_allclose(back.bounds, mesh.bounds, atol=POSITION_ATOL)
    assert back.volume == pytest.approx(mesh.volume, rel=1e-4)  # positive: faces still point outwards
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_unknown_extension_lists_the_supported_ones(tmp_path: Path):
    with pytest.raises(SdfkitError) as info:
        export_mesh(outward_sphere(), tmp_path / "shape.vtk")
    message = str(info.value)
    assert "\n" not in message and all(ext in message for ext in FORMATS)
    with pytest.raises(SdfkitError, match="choose an extension"):
        check_format(tmp_path / "no_suffix")
    assert check_format("a/b/MESH.PLY") == ".ply"
    assert not list(tmp_path.iterdir())


def test_refused_meshes_leave_an_existing_file_untouched(tmp_path: Path):
    out = tmp_path / "keep.ply"
    export_mesh(outward_sphere(), out)
    before = out.read_bytes()
    with pytest.raises(SdfkitError, match="empty"):
        export_mesh(trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), int)), out)
    broken = outward_sphere()
    broken.vertices[3] = np.inf
    with pytest.raises(SdfkitError, match="NaN or infinite"):
        export_mesh(broken, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ply"]


def test_missing_parent_folders_are_created(tmp_path: Path):
    out = export_mesh(outward_sphere(), tmp_path / "a" / "b" / "m.stl")
    assert out.is_file() and len(trimesh.load(out).faces) == 320


@pytest.fixture(scope="module")
def dense_sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=6, radius=1.0)  # 81,920 faces


@pytest.mark.parametrize("target", [20_000, 5_000, 1_000])
def test_simplify_reaches_the_target_and_stays_close(dense_sphere: trimesh.Trimesh, target: int):
    small = simplify_mesh(dense_sphere, target)
    assert 0.95 * target <= len(small.faces) <= target
    assert small.is_watertight and small.volume > 0  # closed, faces still pointing outwards
    # Quadric collapses move vertices slightly off the sphere; the enclosed volume barely changes.
    assert small.volume == pytest.approx(dense_sphere.volume, rel=0.01)
    assert np.abs(np.linalg.norm(small.vertices, axis=1) - 1.0).max() < 0.02
    chamfer = simplification_chamfer(small, dense_sphere, dense_sphere)
    assert 0.0 < chamfer < (1e-5 if target >= 5_000 else 1e-4)


def test_simplify_keeps_small_meshes_and_checks_the_target(dense_sphere: trimesh.Trimesh):
    assert simplify_mesh(dense_sphere, 0) is dense_sphere
    assert simplify_mesh(dense_sphere, len(dense_sphere.faces)) is dense_sphere
    assert simplification_chamfer(dense_sphere, dense_sphere, dense_sphere) == 0.0
    for bad in (1, 3, -5):
        with pytest.raises(SdfkitError, match="--faces"):
            check_faces(bad)


def test_mesh_command_simplifies_a_real_mesh(shared_meshes: Path, tmp_path: Path):
    source = shared_meshes / "val" / "torus.obj"
    full, small = tmp_path / "full.ply", tmp_path / "small.ply"
    for out, faces in ((full, 0), (small, 3_000)):
        proc = subprocess.run([sys.executable, "-m", "sdfkit", "mesh", "--exact", str(source), str(out),
                               "--resolution", "64", "--faces", str(faces)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    full_mesh, small_mesh = (trimesh.load(p, force="mesh", process=False) for p in (full, small))
    assert len(full_mesh.faces) > 10_000 and 2_850 <= len(small_mesh.faces) <= 3_000
    gt = trimesh.load(source, force="mesh")
    assert simplification_chamfer(small_mesh, full_mesh, gt) < 1e-5


def test_fit_writes_the_simplified_mesh_and_reports_both(shared_meshes: Path, tmp_path: Path):
    out = tmp_path / "fit"
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "fit", str(shared_meshes / "val" / "sphere.obj"), "--out",
                           str(out), "--steps", "5", "--resolution", "48", "--grid-resolution", "8", "--no-preview",
                           "--faces", "800", "--keep-full", "--format", "ply", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    mesh, full = report["meshes"]["mesh"], report["meshes"]["full"]
    assert report["mesh"] == mesh["file"] == "mesh.ply" and full["file"] == "mesh_full.ply"
    assert report["scored"] == "full"
    assert mesh["target_faces"] == 800 and 760 <= mesh["faces"] <= 800 < full["faces"]
    for entry in (mesh, full):
        written = trimesh.load(out / entry["file"], force="mesh", process=False)
        assert len(written.faces) == entry["faces"] and len(written.vertices) == entry["vertices"]
        assert (out / entry["file"]).stat().st_size == entry["bytes"]
    # The reported figure against an independent estimate: trimesh's closest points, in the input's unit frame (box
    # centre at 0, farthest input vertex at 1), where the report gives it.
    source = trimesh.load(shared_meshes / "val" / "sphere.obj", force="mesh", process=False)
    scale = 1.0 / np.linalg.norm(source.vertices - source.bounds.mean(axis=0), axis=1).max()
    simplified, fitted = (trimesh.load(out / e["file"], force="mesh", process=False) for e in (mesh, full))

    def one_way(a: trimesh.Trimesh, b: trimesh.Trimesh) -> float:
        points = trimesh.sample.sample_surface(a, 5000, seed=0)[0]
        return float(np.mean(trimesh.proximity.closest_point(b, points)[1] ** 2))

    estimate = (one_way(simplified, fitted) + one_way(fitted, simplified)) * scale**2
    assert mesh["chamfer_to_full"] > 0 and mesh["chamfer_to_full"] == pytest.approx(estimate, rel=0.2)
