"""Offscreen renders and fit previews (viewer.render, viewer.preview)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from sdfkit.errors import SdfkitError
from viewer.render import NoOffscreenGL, look_at, parse_size, render_row, render_views, write_render

BACKGROUND_MIN = 250  # the background is white; object pixels are darker than this


def object_mask(image: np.ndarray) -> np.ndarray:
    return np.any(image < BACKGROUND_MIN, axis=-1)


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
    assert np.all(image[0, 0] >= BACKGROUND_MIN) and np.all(image[-1, -1] >= BACKGROUND_MIN)
    # A lit cube at a three-quarter view shows faces of different brightness.
    assert np.ptp(image[mask].astype(int).sum(axis=1)) > 60


def test_views_go_around_the_object(tmp_path, sphere_mesh_file):
    # An L-shaped object looks different from each side.
    ell = trimesh.util.concatenate([trimesh.creation.box((2.0, 0.5, 0.5)),
                                    trimesh.creation.box((0.5, 0.5, 2.0), transform=trimesh.transformations.translation_matrix((0.75, 0, 1.25)))])
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


def test_preview_has_renders_and_three_slices(tmp_path):
    from data_prep.mesh import normalize_mesh
    from data_prep.sdf import MeshSDF
    from viewer.preview import PANEL, write_preview

    gt = trimesh.creation.icosphere(subdivisions=3, radius=2.0)
    recon = trimesh.creation.icosphere(subdivisions=2, radius=2.0)
    unit, norm = normalize_mesh(gt)
    out = tmp_path / "preview.png"
    write_preview(out, recon, gt, MeshSDF(unit), norm, ((-1.2,) * 3, (1.2,) * 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.png"]
    image = np.asarray(Image.open(out).convert("RGB"))
    panels = image.shape[1] // PANEL
    assert image.shape[0] == PANEL and panels == (5 if offscreen_gl_available() else 3)  # 3: slices only
    slices = [image[:, (panels - 3 + i) * PANEL:(panels - 2 + i) * PANEL] for i in range(3)]
    for panel in slices:
        c = PANEL // 2
        assert panel[c, c, 2] > panel[c, c, 0] + 50  # the sphere's centre is inside: blue
        assert panel[-3, -3, 0] > panel[-3, -3, 2] + 50  # the box corner is outside: orange
        black = np.argwhere(np.all(panel == 0, axis=-1))
        black = black[black[:, 0] > 20]  # skip the label
        radii = np.hypot(*(black - c).T) / (PANEL / 2.4)
        assert len(black) > 50 and np.all(np.abs(radii - 1.0) < 0.05)  # the contour is the unit sphere
    if panels == 5:
        for i in range(2):
            mask = object_mask(image[20:, i * PANEL:(i + 1) * PANEL])
            rows, cols = np.nonzero(mask)
            assert mask.mean() > 0.1 and abs(cols.mean() - PANEL / 2) < 20
