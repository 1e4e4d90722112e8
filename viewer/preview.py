"""``preview.png`` of a fit: reconstruction beside ground truth, and three SDF slices.

One row: the renders (when offscreen OpenGL works; otherwise the slices alone),
then slices across x, y and z through the box centre, drawn by
:func:`viewer.figures.draw_sheet` with axes in the input's units, one colour bar
in distance units and the clamp band marked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import trimesh

from data_prep.forked import Beside, can_fork
from viewer.figures import RenderPanel, Sheet, SlicePanel, draw_sheet, sheet_png
from viewer.render import NoOffscreenGL, render_meshes
from viewer.slices import Field, clamp_distance, default_range, evaluate_slice

PANEL = 320
SLICE_RESOLUTION = 192


def _panels(meshes: list[trimesh.Trimesh], names: list[str], import_order: bool) -> list[RenderPanel]:
    try:
        images = render_meshes(meshes, (PANEL, PANEL), import_order=import_order)
    except NoOffscreenGL:
        return []  # the slices still tell the story; any other rendering failure is raised
    return [RenderPanel(name, image) for image, name in zip(images, names)]


def render_panels(recon: trimesh.Trimesh, gt: trimesh.Trimesh | None) -> Beside[list[RenderPanel]]:
    """The renders of the reconstruction and the ground truth, made in a forked child while the caller goes on
    (:class:`data_prep.forked.Beside`; in this process where it cannot fork): [] when offscreen GL is unavailable.

    The child alone loads pyrender and OpenGL, so it skips importing mesh_to_sdf (and scikit-learn) ahead of
    them, and this process may still import mesh_to_sdf later. A process that has loaded OpenGL already renders
    here: a child would inherit its driver's state.
    """
    meshes, names = [recon], ["reconstruction"]
    if gt is not None:
        meshes.append(gt)
        names.append("ground truth")
    here = "OpenGL" in sys.modules or not can_fork()
    return Beside(lambda: _panels(meshes, names, import_order=here), here=here)


def slice_panels(field: Field, bounds, resolution: int = SLICE_RESOLUTION) -> list[SlicePanel]:
    """Three slices through the box centre, across x, y and z."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    centre = (lo + hi) / 2.0
    return [SlicePanel(axis, float(c), evaluate_slice(field, axis, float(c), (lo, hi), resolution))
            for axis, c in enumerate(centre)]


def preview_sheet(recon: trimesh.Trimesh, gt: trimesh.Trimesh | None, field: Field, normalization, bounds,
                  clamp: float | None = None, annotate: bool = True) -> Sheet:
    """The preview sheet (see the module docstring).

    ``recon`` and ``gt`` may be in any frame (each render frames its own mesh); ``field`` and ``bounds``
    are in the unit frame of ``normalization``, which labels the slices in the input's units. ``clamp``
    defaults to the field's band (:func:`viewer.slices.clamp_distance`).
    """
    if clamp is None:
        clamp = clamp_distance(field)
    renders = render_panels(recon, gt)  # in a child, beside the slices' field evaluations
    try:
        slices = slice_panels(field, bounds)
    except BaseException:
        renders.cancel()
        raise
    vmax = default_range(np.concatenate([s.values.ravel() for s in slices]), bounds, clamp)
    cells = [*renders.result(), *slices]
    return draw_sheet([cells], bounds, vmax, clamp, normalization, panel_px=PANEL, annotate=annotate)


def write_preview(path: str | Path, recon: trimesh.Trimesh, gt: trimesh.Trimesh | None, field: Field,
                  normalization, bounds, clamp: float | None = None) -> Path:
    """Write the preview PNG atomically (see :func:`preview_sheet`)."""
    return sheet_png(preview_sheet(recon, gt, field, normalization, bounds, clamp), path)
