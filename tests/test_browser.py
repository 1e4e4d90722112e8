"""The viewer in a real browser: headless Chromium driven by playwright.

Skipped when no Chromium is installed (``.ci/run`` installs Debian's); under ``CI=true`` that skip is a
failure (``tests/conftest.py``). Set ``SDFKIT_UPDATE_SCREENSHOT=1`` to refresh ``docs/images/viewer.png`` with the
first view.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")]


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def slice_colours(image: np.ndarray) -> tuple[float, float]:
    """Fractions of a screenshot in the slice's deep inside (blue) and outside (orange) colours.

    The page is white and the mesh blue-grey (blue minus red about 50 at most), so only the slice
    plane, seen directly or through the half-transparent mesh, is this blue or this orange."""
    rgb = image.astype(int)
    return float((rgb[..., 2] - rgb[..., 0] > 80).mean()), float((rgb[..., 0] - rgb[..., 2] > 80).mean())


def open_page(p, viewer, on_request=None):
    """A headless Chromium page on the viewer, its controls and first slice drawn; (browser, page, seconds)."""
    start = time.time()
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    if on_request is not None:
        page.on("request", on_request)
    page.goto(viewer.url)
    page.wait_for_selector("canvas", timeout=120_000)
    wait_for(lambda: page.locator('[role="slider"]').count() >= 3, 120)
    time.sleep(2.0)  # let the scene arrive and draw
    close = page.locator("button.mantine-Notification-closeButton")  # "software WebGL" notice
    for i in range(close.count()):
        close.nth(i).click()
    time.sleep(0.5)
    return browser, page, time.time() - start


def test_first_view_shows_the_slice_plane_and_round_values(shared_meshes, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from viewer.server import SliceViewer
    from viewer.sources import exact_source

    viewer = SliceViewer(exact_source(shared_meshes / "val" / "penguin.obj"), resolution=128)
    try:
        with sync_api.sync_playwright() as p:
            browser, page, seconds = open_page(p, viewer)
            shot = tmp_path / "first.png"
            page.screenshot(path=str(shot))
            numbers = page.locator("input").evaluate_all("(els) => els.map((e) => e.value)")
            text = page.inner_text("body")
            browser.close()
    finally:
        viewer.stop()
    print(f"first view ready in {seconds:.1f} s")
    inside, outside = slice_colours(np.asarray(Image.open(shot).convert("RGB")))
    # Both sides of the surface show: the plane's inside is not hidden behind the mesh.
    assert inside > 0.01 and outside > 0.02, (inside, outside)
    # Slider and number boxes, and the marks at the sliders' ends, read as round values: no long tails,
    # no negative zero.
    values = [v for v in numbers if v and v.lstrip("-").replace(".", "", 1).isdigit()]
    assert len(values) >= 4, numbers
    for value in values:
        assert not value.startswith("-0.00") and len(value.split(".")[-1]) <= 4, value
    long_numbers = re.findall(r"-?\d*\.\d{5,}|-0\.0+\b", text.replace("\u2212", "-"))
    assert long_numbers == [], long_numbers
    if os.environ.get("SDFKIT_UPDATE_SCREENSHOT"):
        shutil.copy(shot, REPO / "docs" / "images" / "viewer.png")


def test_page_renders_and_the_slider_moves_the_slice(shared_meshes, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import signed_distance
    from viewer.server import SliceViewer
    from viewer.sources import exact_source

    viewer = SliceViewer(exact_source(shared_meshes / "val" / "penguin.obj"), resolution=128)
    try:
        with sync_api.sync_playwright() as p:
            # Offline: every request the page makes goes to the viewer itself.
            outside = []
            browser, page, _ = open_page(p, viewer, on_request=lambda r: None if r.url.startswith(
                (viewer.url, "ws://127.0.0.1:", "data:", "blob:")) else outside.append(r.url))
            sliders = page.locator('[role="slider"]')
            first = tmp_path / "before.png"
            page.screenshot(path=str(first))
            before_updates, before_values = viewer.state["updates"], viewer.state["values"].copy()
            sliders.nth(2).focus()  # the z slider; the shown plane is z
            for _ in range(25):
                page.keyboard.press("ArrowRight")
            wait_for(lambda: viewer.state["updates"] > before_updates and viewer.state["position"] > 0.1)
            time.sleep(1.5)
            second = tmp_path / "after.png"
            page.screenshot(path=str(second))
            browser.close()
    finally:
        viewer.stop()

    assert outside == [], f"the page fetched from outside: {outside[:3]}"
    # The slice the page now shows is the field on the new plane...
    state = viewer.state
    assert not np.array_equal(state["values"], before_values)
    # ...and its zero contour is where the mesh is: signs match the exact SDF of the mesh.
    from viewer.slices import slice_points

    unit, _ = normalize_mesh(load_mesh(shared_meshes / "val" / "penguin.obj"))
    pts, shape = slice_points(state["axis"], state["position"], (viewer.lo, viewer.hi), state["resolution"])
    truth = signed_distance(unit.vertices, unit.faces, pts).reshape(shape)
    assert ((truth < 0) == (state["values"] < 0)).mean() > 0.999
    assert (state["values"] < 0).any() and (state["values"] > 0).any()
    # The picture changed where the plane moved, and it is not blank.
    a = np.asarray(Image.open(first).convert("RGB")).astype(int)
    b = np.asarray(Image.open(second).convert("RGB")).astype(int)
    assert a.shape == (800, 1200, 3)
    assert (np.abs(a - b).sum(axis=-1) > 30).mean() > 0.001
    assert (b.std(axis=(0, 1)) > 5).all()
