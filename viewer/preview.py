"""``preview.png`` of a fit: reconstruction beside ground truth, and three SDF slices.

Everything is composed with PIL and numpy; when no offscreen OpenGL exists the
renders are left out and the preview holds the slices alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_path
from viewer.slices import AXIS_NAMES, Field, auto_range, colorize, evaluate_slice

PANEL = 320
SLICE_RESOLUTION = 192
# Upper limit of the slices' colour range as a fraction of the box's largest side; a field
# clamped to a narrow band near the surface gets its own (smaller) range instead.
RANGE_FRACTION = 1.0 / 8.0


def _panel(image: np.ndarray, text: str) -> Image.Image:
    img = Image.fromarray(image).resize((PANEL, PANEL), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((6, 4), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(255, 255, 255))
    draw.text((6, 4), text, fill=(0, 0, 0))
    return img


def render_panels(recon: trimesh.Trimesh, gt: trimesh.Trimesh | None) -> list[Image.Image]:
    """Renders of the reconstruction and the ground truth, or [] when offscreen GL is unavailable."""
    from viewer.render import render_meshes

    meshes, names = [recon], ["reconstruction"]
    if gt is not None:
        meshes.append(gt)
        names.append("ground truth")
    try:
        images = render_meshes(meshes, (PANEL, PANEL))
    except SdfkitError:
        return []  # no offscreen GL: the slices still tell the story
    return [_panel(image, name) for image, name in zip(images, names)]


def slice_panels(field: Field, bounds, resolution: int = SLICE_RESOLUTION) -> list[Image.Image]:
    """Three slices through the box centre (x, y, z) with their zero contours, one colour range for all."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    centre = (lo + hi) / 2.0
    slices = [evaluate_slice(field, axis, float(centre[axis]), (lo, hi), resolution) for axis in range(3)]
    vmax = min(float(np.max(hi - lo)) * RANGE_FRACTION, auto_range(np.concatenate([s.ravel() for s in slices])))
    return [_panel(colorize(values, vmax=vmax), f"sdf, {AXIS_NAMES[axis]} = {centre[axis]:.2f}")
            for axis, values in enumerate(slices)]


def preview_image(recon: trimesh.Trimesh, gt: trimesh.Trimesh | None, field: Field, normalization,
                  bounds) -> Image.Image:
    """The preview sheet: renders (when GL works), then x/y/z slices, in one row.

    ``recon`` and ``gt`` may be in any frame (each render frames its own mesh);
    ``field`` and ``bounds`` are in the unit frame of ``normalization``.
    """
    panels = render_panels(recon, gt) + slice_panels(field, bounds)
    sheet = Image.new("RGB", (PANEL * len(panels), PANEL), (255, 255, 255))
    for i, panel in enumerate(panels):
        sheet.paste(panel, (i * PANEL, 0))
    return sheet


def write_preview(path: str | Path, recon: trimesh.Trimesh, gt: trimesh.Trimesh | None, field: Field,
                  normalization, bounds) -> Path:
    """Write the preview PNG atomically (see :func:`preview_image`)."""
    sheet = preview_image(recon, gt, field, normalization, bounds)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(path)
