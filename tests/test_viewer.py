"""The viewer: slices against the exact SDF, the server's safety, Ctrl-C, pictures (pixels checked)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viewer.render import NO_GL_MESSAGE
from viewer.slices import colorize, evaluate_slice, slice_points

REPO = Path(__file__).resolve().parents[1]


def test_slice_points_lie_on_the_plane_and_image_is_upright():
    pts, shape = slice_points(2, 0.25, ((-1, -1, -1), (1, 1, 1)), 5)
    assert shape == (5, 5) and np.all(pts[:, 2] == 0.25)
    grid = pts.reshape(5, 5, 3)
    assert grid[0, 0, 1] == 1.0 and grid[-1, 0, 1] == -1.0  # top row is +y
    assert grid[0, 0, 0] == -1.0 and grid[0, -1, 0] == 1.0  # columns run along +x


def test_colorize_marks_the_zero_contour_and_sides():
    sphere = lambda p: (np.linalg.norm(p, axis=1) - 0.5).astype(np.float32)  # noqa: E731
    values = evaluate_slice(sphere, 2, 0.0, ((-1, -1, -1), (1, 1, 1)), 101)
    image = colorize(values, vmax=0.5, iso_step=0)
    centre, corner = image[50, 50].astype(int), image[2, 2].astype(int)
    assert centre[2] > centre[0]  # blue inside
    assert corner[0] > corner[2]  # orange outside
    black = np.all(image == 0, axis=-1)
    r = np.hypot(*(np.argwhere(black) - 50).T) / 50
    assert black.any() and np.all(np.abs(r - 0.5) < 0.03)  # the contour lies on the circle


@pytest.fixture
def viewer(shared_meshes):
    from viewer.server import SliceViewer
    from viewer.sources import exact_source

    v = SliceViewer(exact_source(shared_meshes / "val" / "penguin.obj"), resolution=128)
    yield v
    v.stop()


def test_server_binds_localhost_and_serves_no_files_outside(viewer):
    assert viewer.host == "127.0.0.1"
    assert urllib.request.urlopen(viewer.url, timeout=10).status == 200
    for probe in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd"):
        try:
            body = urllib.request.urlopen(viewer.url + probe, timeout=10).read()
        except urllib.error.HTTPError as err:
            assert err.code in (400, 403, 404)
            continue
        assert b"root:" not in body


def test_page_values_are_validated(viewer):
    viewer.sliders[2].value = 99.0  # out of the box: clamped
    viewer.update_slice()
    assert viewer.state["position"] == pytest.approx(viewer.hi[2])
    viewer.vmax.value = -1.0
    viewer.update_slice()
    assert viewer.state["image"].shape == (128, 128, 3)


def test_probe_reports_the_field_on_the_plane(viewer):
    viewer._probe(np.array([0.0, 0.0, 5.0]), np.array([0.0, 0.0, -1.0]))
    point, value = viewer.state["probe"]
    assert point[2] == pytest.approx(viewer.state["position"])
    # Reference from a two-point query: point-cloud-utils gets a lone query point wrong.
    reference = viewer.source.field(np.stack([point, point]).astype(np.float32))[0]
    assert value == pytest.approx(float(reference), abs=1e-6) and value < 0  # the penguin's middle is inside


def _ctrl_c_as_in_a_terminal() -> None:
    # A test run started in the background (`cmd &` in a script) inherits SIGINT ignored, and Python then installs
    # no KeyboardInterrupt handler at all: the child must see Ctrl-C as a terminal would deliver it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_view_stops_cleanly_on_ctrl_c(shared_meshes):
    proc = subprocess.Popen([sys.executable, "-m", "sdfkit", "view", str(shared_meshes / "val" / "sphere.obj"),
                             "--exact"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        url = None
        deadline = time.time() + 120
        while time.time() < deadline and url is None:
            line = proc.stdout.readline()
            if "sdfkit viewer at" in line:
                url = line.split("at", 1)[1].split()[0]
        assert url and url.startswith("http://127.0.0.1:")
        assert urllib.request.urlopen(url, timeout=10).status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_view_stops_cleanly_on_ctrl_c_as_soon_as_it_prints_its_url(shared_meshes):
    # A Ctrl-C that lands between the URL line and the serving loop once escaped as "interrupted" (exit 130) and
    # left the server to the interpreter's exit. The window is short, so each try may miss it: three tries.
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "sdfkit", "view", str(shared_meshes / "val" / "sphere.obj"),
                                 "--exact"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_ctrl_c_as_in_a_terminal)
        try:
            deadline = time.time() + 120
            while time.time() < deadline and "sdfkit viewer at" not in proc.stdout.readline():
                pass
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 0 and out.strip().endswith("stopped") and "Traceback" not in err, (out, err)


def test_view_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "view", str(tmp_path / "nothing.obj"), "--exact"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_render_pixels(shared_meshes, tmp_path):
    out = tmp_path / "r.png"
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "render", str(shared_meshes / "val" / "torus.obj"),
                           "--out", str(out),
                           "--views", "2", "--size", "160x120"], capture_output=True, text=True, timeout=300)
    if proc.returncode == 1 and proc.stderr.startswith(f"error: {NO_GL_MESSAGE}"):
        pytest.skip(proc.stderr.strip())  # this machine has no offscreen GL; any other failure fails below
    assert proc.returncode == 0, proc.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (120, 320, 3)
    for half in (image[:, :160], image[:, 160:]):
        rgb = half.astype(int)
        object_pixels = rgb[..., 2] - rgb[..., 0] > 25  # the ground around it is grey, the torus blue-grey
        assert 0.05 < object_pixels.mean() < 0.9
        rows, cols = np.nonzero(object_pixels)
        assert abs(cols.mean() - 80) < 25 and abs(rows.mean() - 60) < 25  # the torus is in the middle


def test_slices_command_writes_the_viewer_sheet(shared_meshes, tmp_path):
    from viewer.figures import slice_sheet
    from viewer.sources import exact_source

    mesh = shared_meshes / "val" / "sphere.obj"
    out = tmp_path / "s.png"
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "slices", str(mesh), "--exact", "--out", str(out),
                           "--resolution", "64", "--count", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # The command is a thin layer: its picture is the tested sheet's, in the mesh's own units.
    src = exact_source(mesh)
    sheet = slice_sheet(src.field, src.bounds, count=2, resolution=64, normalization=src.normalization)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), sheet.image)
    assert len(sheet.panel_boxes) == 6 and sheet.colorbar_box is not None
    for args, message in ((["--count", "0"], "--count"), (["--resolution", "4"], "resolution"),
                          (["--out", str(tmp_path / "s.jpg")], "--out")):
        bad = subprocess.run([sys.executable, "-m", "sdfkit", "slices", str(mesh), "--exact", *args],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_slider_values_are_round_and_never_negative_zero():
    from viewer.server import round_step, round_to

    assert round_step(1.230514) == 0.005 and round_step(2.0) == 0.01 and round_step(0.0031, 100) == 2e-05
    assert repr(round_to(-0.6152568, 0.005)) == "-0.615" and repr(round_to(0.130765, 0.005)) == "0.13"
    zero = round_to(-1e-17, 0.005)
    assert zero == 0.0 and np.copysign(1.0, zero) == 1.0  # not -0.0, which a page shows as "-0"


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_plane_rotation_lays_the_image_as_the_slice_is_drawn(axis):
    import viser.transforms as vtf

    from viewer.server import plane_rotation
    from viewer.slices import free_axes

    rotation = vtf.SO3(np.asarray(plane_rotation(axis))).as_matrix()
    u, v = free_axes(axis)
    # viser's image: columns along x, rows down along y. The slice: columns along u, rows down along -v.
    np.testing.assert_allclose(rotation @ np.eye(3)[0], np.eye(3)[u], atol=1e-12)
    np.testing.assert_allclose(rotation @ np.eye(3)[1], -np.eye(3)[v], atol=1e-12)
