"""Mesh export: every format round-trips the geometry, writes are atomic, bad requests are one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfkit.errors import SdfkitError
from sdfkit.export import FORMATS, check_format, export_mesh

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
