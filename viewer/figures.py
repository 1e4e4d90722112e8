"""Sheets of slices (and renders) that explain themselves, drawn with matplotlib.

Each slice panel has its axes labelled and ticked in the input's units (through
the fit's :class:`data_prep.mesh.Normalization`; the unit frame when there is
none), equal aspect (a round tube stays round whatever the box's shape), its
plane position as a title, and the sheet has one colour bar in distance units.
Colours, contours and the clamp band come from :mod:`viewer.slices`, so the
pictures and the interactive viewer agree. Orientation: see :mod:`viewer.slices`
(u to the right, v up, +y up wherever it is in the plane).

matplotlib draws off-screen through its Agg canvas only (no pyplot state, no
display).
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from PIL import Image

from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_path
from viewer.slices import (
    AXIS_NAMES,
    CLAMP_EDGE,
    CLAMPED_INSIDE_RGB,
    CLAMPED_OUTSIDE_RGB,
    DEFAULT_ISO_LINES,
    Field,
    check_resolution,
    clamp_distance,
    clamped_mask,
    colorize,
    default_range,
    evaluate_slice,
    free_axes,
    ramp,
    slice_positions,
)

DPI = 100
FONT_SIZE = 9
# Room around a panel for its title, tick labels and axis labels, in pixels.
PANEL_MARGIN = (90, 60)
COLORBAR_WIDTH = 200
# Characters of title per pixel of figure width (the title, DejaVu Sans a size larger than FONT_SIZE, takes
# about 8.5 px a character).
TITLE_CHARS_PER_PX = 1 / 8.5
MAX_COUNT = 16
ISO_COLOR = (0.0, 0.0, 0.0, 0.35)
# Panels are planned at the slice's resolution within these sizes: coarse slices are shown larger (each
# sample a block of pixels), fine ones scaled down.
MIN_PANEL_PX = 256
MAX_PANEL_PX = 512


@dataclasses.dataclass
class SlicePanel:
    """One slice: signed distances (negative inside) on the plane ``x[axis] = position`` (unit frame).

    ``values`` is (R, R) in image orientation (:func:`viewer.slices.slice_points`).
    """

    axis: int
    position: float
    values: np.ndarray


@dataclasses.dataclass
class RenderPanel:
    """A picture shown as it is, with a title: (H, W, 3) uint8."""

    title: str
    image: np.ndarray


Cell = SlicePanel | RenderPanel


@dataclasses.dataclass
class Sheet:
    """A drawn sheet: the picture and, for checking it, where its parts landed.

    image : (H, W, 3) uint8
    panel_boxes : (left, top, right, bottom) pixels of each cell's picture, row by row
    colorbar_box : the colour bar's (left, top, right, bottom), or None when not drawn
    """

    image: np.ndarray
    panel_boxes: list[tuple[int, int, int, int]]
    colorbar_box: tuple[int, int, int, int] | None


@dataclasses.dataclass(frozen=True)
class Frame:
    """Unit frame -> input units: ``x_input = x_unit * scale + center`` (distances scale by ``scale``)."""

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    units: str = "unit frame"

    @classmethod
    def of(cls, normalization) -> Frame:
        """The frame of a :class:`data_prep.mesh.Normalization` (input units), or the unit frame for None."""
        if normalization is None:
            return cls()
        center = tuple(float(c) for c in normalization.center)
        return cls(center, float(normalization.scale), "input units")  # type: ignore[arg-type]


def _box(fig: Figure, ax) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom) of an axes' drawn area, top-left origin."""
    extent = ax.get_window_extent()
    height = fig.bbox.height
    return (int(round(extent.x0)), int(round(height - extent.y1)),
            int(round(extent.x1)), int(round(height - extent.y0)))


def _colormap(clamp: bool) -> Colormap:
    cmap = ListedColormap(ramp(np.linspace(-1.0, 1.0, 256)))
    if clamp:
        cmap = cmap.with_extremes(under=tuple(CLAMPED_INSIDE_RGB), over=tuple(CLAMPED_OUTSIDE_RGB))
    return cmap


def draw_sheet(rows: Sequence[Sequence[Cell]], bounds, vmax: float, clamp: float | None = None,
               normalization=None, panel_px: int = 256, annotate: bool = True, title: str | None = None) -> Sheet:
    """Draw cells in a grid (rows of slices and renders) with one colour bar for every slice.

    Parameters
    ----------
    rows : rows of :class:`SlicePanel` or :class:`RenderPanel`
    bounds : ((3,) float, (3,) float)
        The unit-frame box the slices were cut from.
    vmax : float
        Colour range in the unit frame (distances at which the colours saturate).
    clamp : float, optional
        The field's clamp band in the unit frame (:func:`viewer.slices.colorize`).
    normalization : data_prep.mesh.Normalization, optional
        Labels positions and distances in the input's units; the unit frame when None.
    panel_px : int
        Width planned for a cell's picture, in pixels (the layout then fits the pictures to the figure).
    annotate : bool
        Titles, ticks, axis labels and the colour bar; False draws the pictures alone (same figure size).
    """
    frame = Frame.of(normalization)
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    nrows, ncols = len(rows), max(len(r) for r in rows)
    # Each row as tall as its tallest picture at ``panel_px`` wide: thin slices get thin rows.
    ratios = [max(_aspect(cell, lo, hi) for cell in row) for row in rows]
    width_px = ncols * (panel_px + PANEL_MARGIN[0]) + COLORBAR_WIDTH
    title_lines = textwrap.wrap(title, max(20, int(width_px * TITLE_CHARS_PER_PX))) if title else []
    width = width_px / DPI
    height = (sum(ratios) * panel_px + nrows * PANEL_MARGIN[1] + 18 * len(title_lines) + 8) / DPI
    with matplotlib.rc_context({"font.size": FONT_SIZE}):
        layout = ConstrainedLayoutEngine(w_pad=8 / DPI, h_pad=8 / DPI, wspace=0.04, hspace=0.04)
        fig = Figure(figsize=(width, height), dpi=DPI, layout=layout, facecolor="white")
        axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={"height_ratios": ratios})
        slice_axes = []
        for r, row in enumerate(rows):
            for c in range(ncols):
                ax = axes[r][c]
                if c >= len(row):
                    ax.set_axis_off()
                    continue
                cell = row[c]
                if isinstance(cell, RenderPanel):
                    ax.imshow(cell.image, interpolation="antialiased")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if annotate:
                        ax.set_title(cell.title)
                    continue
                slice_axes.append(ax)
                _draw_slice(ax, cell, lo, hi, vmax, clamp, frame, annotate)
        colorbar = _colorbar(fig, slice_axes, vmax, clamp, frame) if slice_axes else None
        if colorbar is not None and not annotate:
            colorbar.ax.set_visible(False)  # its room stays taken: the pictures keep their place
            colorbar = None
        if annotate and title_lines:
            fig.suptitle("\n".join(title_lines))
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    boxes = [_box(fig, axes[r][c]) for r, row in enumerate(rows) for c in range(len(row))]
    return Sheet(image, boxes, _box(fig, colorbar.ax) if colorbar is not None else None)


def _aspect(cell: Cell, lo: np.ndarray, hi: np.ndarray) -> float:
    """Height over width of a cell's picture as drawn."""
    if isinstance(cell, RenderPanel):
        return cell.image.shape[0] / cell.image.shape[1]
    u, v = free_axes(cell.axis)
    return float((hi[v] - lo[v]) / (hi[u] - lo[u]))


def panel_extent(axis: int, bounds, frame: Frame) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of the slice across ``axis`` of the unit-frame box ``bounds``, in ``frame``."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    u, v = free_axes(axis)
    s, c = frame.scale, frame.center
    return (lo[u] * s + c[u], hi[u] * s + c[u], lo[v] * s + c[v], hi[v] * s + c[v])


def _draw_slice(ax, cell: SlicePanel, lo: np.ndarray, hi: np.ndarray, vmax: float, clamp: float | None,
                frame: Frame, annotate: bool) -> None:
    u, v = free_axes(cell.axis)
    # imshow over the extent in input units with equal aspect keeps shapes, whatever the box's sides.
    extent = panel_extent(cell.axis, (lo, hi), frame)
    ax.imshow(colorize(cell.values, vmax=vmax, iso_step=0, contour=False, clamp=clamp), extent=extent,
              origin="upper", aspect="equal", interpolation="auto")
    # Contours as lines, sharp at any scale. Iso-lines only within the colour range, where they are one
    # colour step apart, and never in the clamp band's pale part, where the field is not trained.
    values = np.ma.masked_where(clamped_mask(cell.values, clamp), cell.values)
    step = vmax / DEFAULT_ISO_LINES
    if values.count():
        low, high = float(values.min()), float(values.max())
        levels = [k * step for k in range(-DEFAULT_ISO_LINES, DEFAULT_ISO_LINES + 1)
                  if k != 0 and low < k * step < high]
        if levels:
            ax.contour(values, levels=levels, extent=extent, origin="upper", colors=[ISO_COLOR], linewidths=0.6)
    if cell.values.min() < 0.0 < cell.values.max():
        ax.contour(cell.values, levels=[0.0], extent=extent, origin="upper", colors="black", linewidths=1.4)
    if not annotate:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.set_xlabel(AXIS_NAMES[u])
    ax.set_ylabel(AXIS_NAMES[v])
    ax.set_title(f"{AXIS_NAMES[cell.axis]} = {cell.position * frame.scale + frame.center[cell.axis]:.4g}")


def _colorbar(fig: Figure, slice_axes: list, vmax: float, clamp: float | None, frame: Frame):
    limit = vmax * frame.scale
    mappable = ScalarMappable(norm=Normalize(-limit, limit), cmap=_colormap(clamp is not None))
    bar = fig.colorbar(mappable, ax=slice_axes, extend="both", fraction=0.05, shrink=0.9, aspect=20, pad=0.02)
    label = f"signed distance ({frame.units})\nnegative inside, black line: surface"
    if clamp is not None:
        label += f"\npale: clamped, |d| \u2265 {clamp * CLAMP_EDGE * frame.scale:.3g}"
    bar.set_label(label)
    # Iso-lines in the slices lie at these distances.
    bar.ax.set_yticks(np.linspace(-limit, limit, 2 * DEFAULT_ISO_LINES + 1), minor=True)
    bar.ax.axhline(0.0, color="black", linewidth=1.5)
    return bar


def sheet_png(sheet: Sheet, path: str | Path) -> Path:
    """Write a sheet's picture as a PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(sheet.image).save(tmp, format="PNG")
    return Path(path)


def slice_sheet(field: Field, bounds, count: int = 3, resolution: int = 256, vmax: float | None = None,
                normalization=None, clamp: float | None = None, annotate: bool = True) -> Sheet:
    """A sheet of slices: one row per axis (x, y, z), ``count`` planes per row spread evenly through the box.

    ``field`` maps (n, 3) unit-frame points to (n,) signed distances (negative inside); ``bounds`` is its
    unit-frame box. ``vmax`` defaults to one range for every panel (:func:`viewer.slices.default_range`),
    ``clamp`` to the field's own band (:func:`viewer.slices.clamp_distance`).
    """
    resolution = check_resolution(resolution)
    if count < 1 or count > MAX_COUNT:
        raise SdfkitError(f"slice count must be in [1, {MAX_COUNT}] (got {count})")
    if clamp is None:
        clamp = clamp_distance(field)
    rows = [[SlicePanel(axis, float(pos), evaluate_slice(field, axis, float(pos), bounds, resolution))
             for pos in slice_positions(bounds, axis, count)] for axis in range(3)]
    if vmax is None:
        vmax = default_range(np.concatenate([p.values.ravel() for row in rows for p in row]), bounds, clamp)
    title = "signed distance slices; +y points up wherever it lies in the plane"
    panel_px = int(np.clip(resolution, MIN_PANEL_PX, MAX_PANEL_PX))
    return draw_sheet(rows, bounds, vmax, clamp, normalization, panel_px=panel_px, annotate=annotate, title=title)


def write_slices(path: str | Path, field: Field, bounds, count: int = 3, resolution: int = 256,
                 vmax: float | None = None, normalization=None, clamp: float | None = None) -> Path:
    """Write :func:`slice_sheet` as a PNG, atomically."""
    return sheet_png(slice_sheet(field, bounds, count, resolution, vmax, normalization, clamp), path)
