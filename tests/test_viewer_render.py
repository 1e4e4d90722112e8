"""Offscreen renders and fit previews (viewer.render, viewer.preview)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy import ndimage

from sdfkit.errors import SdfkitError
from viewer.render import (
    OUTLINE_RGB,
    NoOffscreenGL,
    look_at,
    outline,
    parse_size,
    render_row,
    render_views,
    write_render,
)


def object_mask(image: np.ndarray) -> np.ndarray:
    """The object: its blue-grey material or its outline (the ground and its shadow are neutral grey)."""
    rgb = image.astype(int)
    return (rgb[..., 2] - rgb[..., 0] > 25) | np.all(image == OUTLINE_RGB, axis=-1)


def render_or_skip(fn, *args, **kwargs):
    """Skip only when the machine has no offscreen GL; a failure of sdfkit's rendering fails the test."""
    try:
        return fn(*args, **kwargs)
    except NoOffscreenGL as exc:
        pytest.skip(str(exc))


def offscreen_gl_available() -> bool:
    try:
        render_views(trimesh.creation.box(), (16, 16))
    except NoOffscreenGL:
        return False
    return True


def test_a_broken_render_is_an_error_not_a_missing_gl(monkeypatch):
    """A pyrender that fails inside sdfkit's rendering is reported as itself, never as "no GL" (which would skip)."""
    import pyrender

    render_or_skip(render_views, trimesh.creation.box(), (16, 16))  # skips on a machine without GL

    def broken(*args, **kwargs):
        raise ValueError("broken scene")

    monkeypatch.setattr(pyrender.Mesh, "from_trimesh", broken)
    with pytest.raises(ValueError, match="broken scene"):
        render_views(trimesh.creation.box(), (16, 16))


def test_a_missing_gl_library_is_no_offscreen_gl(monkeypatch):
    monkeypatch.setenv("PYOPENGL_PLATFORM", "osmesa")
    monkeypatch.setattr("ctypes.util.find_library", lambda name: None)
    with pytest.raises(NoOffscreenGL, match="libOSMesa"):
        render_views(trimesh.creation.box(), (16, 16))


def test_parse_size():
    assert parse_size("640x480") == (640, 480) and parse_size(" 32X16 ") == (32, 16)
    for bad in ("640", "axb", "8x8", "10000x10"):
        with pytest.raises(SdfkitError):
            parse_size(bad)


def test_look_at_is_a_rotation_that_looks_at_the_target():
    eye, target = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 0.0])
    pose = look_at(eye, target)
    rot = pose[:3, :3]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    forward = (target - eye) / np.linalg.norm(target - eye)
    np.testing.assert_allclose(-rot[:, 2], forward, atol=1e-12)  # OpenGL cameras look down -z
    np.testing.assert_allclose(pose[:3, 3], eye)


def test_render_puts_the_object_in_the_middle():
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    box.apply_translation((10.0, -4.0, 2.0))  # framing follows the mesh, wherever it is
    image = render_or_skip(render_views, box, (96, 64))[0]
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    mask = object_mask(image)
    assert 0.05 < mask.mean() < 0.8
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - 32) < 8 and abs(cols.mean() - 48) < 8
    assert not mask[0, 0] and not mask[-1, -1]
    # A lit cube at a three-quarter view shows faces of different brightness.
    assert np.ptp(image[mask].astype(int).sum(axis=1)) > 60


def test_render_is_not_white_on_white():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    image = render_or_skip(render_views, sphere, (128, 128))[0].astype(int)
    # A dark outline runs round the silhouette; what it encloses is the object.
    line = np.all(image == OUTLINE_RGB, axis=-1)
    inside = ndimage.binary_fill_holes(line) & ~line
    assert line.sum() > 2 * np.pi * np.sqrt(inside.sum() / np.pi) * 0.8 and inside.mean() > 0.1
    ground = image[~ndimage.binary_fill_holes(line)]
    # The object differs from what is around it, and neither is white.
    obj = image[inside].mean(axis=0)
    assert np.abs(obj - np.median(ground, axis=0)).sum() > 60
    assert (obj < 235).all() and (np.median(ground, axis=0) < 250).all()
    # The ground under it holds a shadow: darker grey below the sphere than at the sides.
    rows, cols = np.nonzero(inside)
    below = image[rows.max() + 3:rows.max() + 9, cols.min():cols.max()]
    side = image[rows.max() + 3:rows.max() + 9, :5]
    assert below.sum(axis=-1).mean() < side.sum(axis=-1).mean() - 30


def test_outline_marks_silhouette_and_depth_steps_on_the_nearer_side():
    depth = np.zeros((7, 9))
    depth[1:6, 1:8] = 2.0  # a far slab
    depth[2:5, 2:5] = 1.0  # a near block in front of it
    edge = outline(depth, radius=1.0)
    expected = np.zeros_like(edge)
    expected[1, 1:8] = expected[5, 1:8] = expected[1:6, 1] = expected[1:6, 7] = True  # silhouette
    expected[2, 2:5] = expected[4, 2:5] = expected[2:5, 2] = expected[2:5, 4] = True  # the near block's rim
    np.testing.assert_array_equal(edge, expected)


def test_views_go_around_the_object(tmp_path, sphere_mesh_file):
    # An L-shaped object looks different from each side.
    ell = trimesh.util.concatenate([trimesh.creation.box((2.0, 0.5, 0.5)),
                                    trimesh.creation.box((0.5, 0.5, 2.0),
                                                         transform=trimesh.transformations.translation_matrix(
                                                             (0.75, 0, 1.25)))])
    row = render_or_skip(render_row, ell, 3, (64, 64))
    assert row.shape == (64, 192, 3)
    views = [row[:, i * 64:(i + 1) * 64] for i in range(3)]
    for i in range(3):
        assert object_mask(views[i]).mean() > 0.03
        for j in range(i + 1, 3):
            assert np.mean(object_mask(views[i]) != object_mask(views[j])) > 0.02
    out = tmp_path / "sphere.png"
    render_or_skip(write_render, sphere_mesh_file, out, views=2, size=(48, 40))
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (40, 96, 3) and object_mask(image).mean() > 0.1
    with pytest.raises(SdfkitError, match="views"):
        render_row(ell, 0)


def test_preview_has_renders_and_three_labelled_slices(tmp_path):
    from data_prep.mesh import normalize_mesh
    from data_prep.sdf import MeshSDF
    from viewer.preview import preview_sheet, write_preview

    gt = trimesh.creation.icosphere(subdivisions=3, radius=2.0)
    gt.apply_translation((5.0, 0.0, 0.0))
    recon = trimesh.creation.icosphere(subdivisions=2, radius=2.0)
    unit, norm = normalize_mesh(gt)
    bounds = ((-1.2,) * 3, (1.2,) * 3)
    out = tmp_path / "preview.png"
    write_preview(out, recon, gt, MeshSDF(unit), norm, bounds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.png"]
    sheet = preview_sheet(recon, gt, MeshSDF(unit), norm, bounds)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), sheet.image)
    assert len(sheet.panel_boxes) == (5 if offscreen_gl_available() else 3)  # 3: no offscreen GL, slices only
    assert sheet.colorbar_box is not None
    for left, top, right, bottom in sheet.panel_boxes[-3:]:
        panel = sheet.image[top + 2:bottom - 2, left + 2:right - 2]
        c = np.array(panel.shape[:2]) // 2
        assert panel[c[0], c[1], 2] > panel[c[0], c[1], 0] + 50  # the sphere's centre is inside: blue
        assert panel[3, 3, 0] > panel[3, 3, 2] + 50  # the box corner is outside: orange
        assert (right - left) == pytest.approx(bottom - top, abs=2)  # a cube's slice is square
        # The zero contour is the sphere: radius 1 of the 2.4-wide box.
        black = np.argwhere(np.all(panel < 70, axis=-1))
        radii = np.hypot(*(black - c).T) / (panel.shape[1] / 2.4)
        assert len(black) > 50 and np.all(np.abs(radii - 1.0) < 0.06)
    if len(sheet.panel_boxes) == 5:
        for left, top, right, bottom in sheet.panel_boxes[:2]:
            mask = object_mask(sheet.image[top:bottom, left:right])
            rows, cols = np.nonzero(mask)
            assert mask.mean() > 0.1 and abs(cols.mean() - (right - left) / 2) < 20


def test_the_preview_renders_in_a_child_and_leaves_mesh_to_sdf_importable(tmp_path):
    """In a fresh process, as the ``sdfkit`` command runs: the renders come from a forked child, so this process
    never loads OpenGL and may import mesh_to_sdf afterwards (it refuses to load after pyrender)."""
    import json
    import subprocess
    import sys

    script = """
import json, sys
import trimesh
from data_prep.mesh import normalize_mesh
from data_prep.sdf import MeshSDF
from viewer.preview import preview_sheet
gt = trimesh.creation.icosphere(subdivisions=3, radius=2.0)
unit, norm = normalize_mesh(gt)
sheet = preview_sheet(gt, gt, MeshSDF(unit), norm, ((-1.2,) * 3, (1.2,) * 3))
loaded = ["OpenGL" in sys.modules, "pyrender" in sys.modules]
import mesh_to_sdf
print(json.dumps({"panels": len(sheet.panel_boxes), "loaded": loaded}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == [False, False]
    assert out["panels"] == (5 if offscreen_gl_available() else 3)
