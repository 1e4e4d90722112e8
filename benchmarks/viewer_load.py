"""Time the viewer's first view in headless Chromium, stage by stage, with a cold and a warm browser.

Stages: the server built (mesh loaded, first slice evaluated), Chromium launched, the page loaded, the
3D canvas and the controls shown, and the slice plane drawn (screenshots polled until the slice's
colours cover as much of the page as the browser test asks). "cold" runs Chromium with an empty home
and cache folder, as on a fresh machine; "warm" reuses this user's. ``--environment-map`` adds runs with
viser's image-based lighting on, as the viewer had it before.

    python -m benchmarks.viewer_load [--mesh ../shared/meshes/val/penguin.obj] [--runs 2] [--environment-map]
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import SHARED, git_commit, load_average, machine, write_result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
# The browser test's threshold: a share of the screenshot in the slice's inside colour.
INSIDE_SHARE = 0.01


def inside_share(png: bytes) -> float:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return float((rgb[..., 2] - rgb[..., 0] > 40).mean())


def first_view(mesh: Path, resolution: int, cold: bool, environment_map: bool) -> dict:
    from playwright.sync_api import sync_playwright

    from viewer.server import SliceViewer
    from viewer.sources import exact_source

    marks, start = {}, time.perf_counter()
    viewer = SliceViewer(exact_source(mesh), resolution=resolution, environment_map=environment_map)
    marks["server_s"] = time.perf_counter() - start
    home = tempfile.mkdtemp(prefix="sdfkit-chromium-") if cold else None
    env = {**os.environ, **({"HOME": home, "XDG_CACHE_HOME": home, "XDG_CONFIG_HOME": home} if home else {})}
    try:
        with sync_playwright() as p:
            t = time.perf_counter()
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, env=env)
            marks["launch_s"] = time.perf_counter() - t
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(viewer.url)
            marks["page_s"] = time.perf_counter() - t
            page.wait_for_selector("canvas", timeout=600_000)
            marks["canvas_s"] = time.perf_counter() - t
            while page.locator('[role="slider"]').count() < 3:
                time.sleep(0.05)
            marks["controls_s"] = time.perf_counter() - t
            while inside_share(page.screenshot()) < INSIDE_SHARE and time.perf_counter() - t < 600:
                time.sleep(0.2)
            marks["slice_drawn_s"] = time.perf_counter() - t
            browser.close()
    finally:
        viewer.stop()
        if home:
            shutil.rmtree(home, ignore_errors=True)
    return {k: round(v, 2) for k, v in marks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "val" / "penguin.obj")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--runs", type=int, default=2, help="cold and warm runs each")
    parser.add_argument("--environment-map", action="store_true",
                        help="also time each run with viser's environment map (the viewer's look before it was off)")
    parser.add_argument("--name", default=None, help="result file name (default: viewer_load-<UTC time>)")
    args = parser.parse_args()
    if CHROMIUM is None:
        sys.exit("no chromium installed")
    load_before = load_average()
    runs = []
    for _ in range(args.runs):
        for cold in (True, False):
            for env in (False, True) if args.environment_map else (False,):
                row = {"browser": "cold" if cold else "warm", "environment_map": env,
                       **first_view(args.mesh, args.resolution, cold, env)}
                runs.append(row)
                print(row, flush=True)
    load_after = load_average()
    now = datetime.datetime.now(datetime.timezone.utc)
    result = {"command": "python -m benchmarks.viewer_load " + " ".join(sys.argv[1:]), "commit": git_commit(),
              "date": now.isoformat(timespec="seconds"), "load_average_before": load_before,
              "load_average_after": load_after, "mesh": args.mesh.name, "resolution": args.resolution,
              "chromium": CHROMIUM, "runs": runs}
    path = write_result(args.name or "viewer_load-" + now.strftime("%Y%m%d-%H%M"), result)
    print(f"{machine()}; commit {result['commit']}; load {load_before} -> {load_after}; wrote {path}")


if __name__ == "__main__":
    main()
