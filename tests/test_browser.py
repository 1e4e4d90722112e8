"""The viewer in a real browser: headless Chromium driven by playwright.

Skipped when no Chromium is installed (``.ci/run`` installs Debian's); under ``CI=true`` that skip is a
failure (``tests/conftest.py``). Set
``SDFKIT_UPDATE_SCREENSHOT=1`` to refresh ``docs/images/viewer.png``.
"""

from __future__ import annotations

import os
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


def test_page_renders_and_the_slider_moves_the_slice(shared_meshes, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import signed_distance
    from viewer.server import SliceViewer
    from viewer.sources import exact_source

    viewer = SliceViewer(exact_source(shared_meshes / "val" / "penguin.obj"), resolution=128)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            # Offline: every request the page makes goes to the viewer itself.
            outside = []
            page.on("request", lambda r: None if r.url.startswith((viewer.url, "ws://127.0.0.1:", "data:", "blob:"))
                    else outside.append(r.url))
            page.goto(viewer.url)
            page.wait_for_selector("canvas", timeout=60_000)
            sliders = page.locator('[role="slider"]')
            wait_for(lambda: sliders.count() == 3, 60)
            time.sleep(2.0)  # let the scene arrive and draw
            close = page.locator("button.mantine-Notification-closeButton")  # "software WebGL" notice
            for i in range(close.count()):
                close.nth(i).click()
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
    if os.environ.get("SDFKIT_UPDATE_SCREENSHOT"):
        shutil.copy(second, REPO / "docs" / "images" / "viewer.png")
