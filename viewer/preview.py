"""``preview.png`` of a fit: reconstruction beside ground truth, and three SDF slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_path
from viewer.slices import slice_image

PANEL = 320


def _label(image: np.ndarray, text: str) -> Image.Image:
    img = Image.fromarray(image).resize((PANEL, PANEL))
    ImageDraw.Draw(img).text((6, 4), text, fill=(0, 0, 0))
    return img


def preview_panels(recon, gt, field, normalization, bounds, slice_resolution: int = 192) -> list[Image.Image]:
    """The preview's panels: renders of reconstruction and ground truth (when GL works), then x/y/z slices."""
    from viewer.render import render_mesh

    panels = []
    try:
        panels.append(_label(render_mesh(recon, (PANEL, PANEL)), "reconstruction"))
        panels.append(_label(render_mesh(gt, (PANEL, PANEL)), "ground truth"))
    except SdfkitError:
        pass  # no offscreen GL: the slices still tell the story
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    centre = (lo + hi) / 2.0
    vmax = float(np.max(hi - lo)) / 8.0
    for axis, name in enumerate("xyz"):
        img = slice_image(field, axis, float(centre[axis]), (lo, hi), slice_resolution, vmax=vmax)
        panels.append(_label(img, f"sdf, {name} = {centre[axis]:.2f}"))
    return panels


def write_preview(path: str | Path, recon, gt, field, normalization, bounds) -> Path:
    """Write the preview PNG atomically."""
    panels = preview_panels(recon, gt, field, normalization, bounds)
    sheet = Image.new("RGB", (PANEL * len(panels), PANEL), (255, 255, 255))
    for i, panel in enumerate(panels):
        sheet.paste(panel, (i * PANEL, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(path)
