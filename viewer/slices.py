"""Axis-aligned slices of a signed distance field as images.

Sign convention: signed distance is NEGATIVE INSIDE, positive outside.

Colours: a diverging map, blue inside (negative) and orange outside
(positive), white at the surface; the zero level drawn as a sharp black
one-pixel contour and iso-lines every ``iso_step`` as darker bands.

Image orientation: a slice across ``axis`` spans the two other axes in
increasing order, ``u`` then ``v`` (x: (y, z), y: (x, z), z: (x, y)). Columns
run along ``u`` left to right and rows along ``v`` top to bottom from high to
low, so ``v`` points up in the picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sdfkit.errors import SdfkitError

Field = Callable[[np.ndarray], np.ndarray]

AXES = {"x": 0, "y": 1, "z": 2}
AXIS_NAMES = "xyz"
MIN_RESOLUTION = 8
MAX_RESOLUTION = 2048
# Points per field call: bounds peak memory of the field (a 256 x 256 slice is one batch).
EVAL_BATCH = 1 << 16
INSIDE_RGB = np.array([0.13, 0.35, 0.80])
OUTSIDE_RGB = np.array([0.90, 0.45, 0.10])
SURFACE_RGB = np.ones(3)
# Iso-lines darken the colour underneath by this factor, so the sign stays readable.
ISO_SHADE = 0.72
DEFAULT_ISO_LINES = 5  # iso-lines between the surface and the colour-range limit


def axis_index(axis: int | str) -> int:
    """0, 1 or 2 for an axis given as ``"x"``/``"y"``/``"z"`` or as an index."""
    if isinstance(axis, str) and axis.lower() in AXES:
        return AXES[axis.lower()]
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and 0 <= int(axis) <= 2:
        return int(axis)
    raise SdfkitError(f"axis must be x, y or z (got {axis!r})")


def check_resolution(resolution: int) -> int:
    """``resolution`` as an int, or a one-line error when outside [MIN_RESOLUTION, MAX_RESOLUTION]."""
    try:
        value = int(resolution)
    except (TypeError, ValueError):
        raise SdfkitError(f"slice resolution must be an integer (got {resolution!r})") from None
    if value != resolution or not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
        raise SdfkitError(f"slice resolution must be an integer in [{MIN_RESOLUTION}, {MAX_RESOLUTION}] "
                          f"(got {resolution})")
    return value


def free_axes(axis: int) -> tuple[int, int]:
    """The image's (u, v) axes for a slice across ``axis``."""
    u, v = (a for a in range(3) if a != axis)
    return u, v


def slice_points(axis: int, position: float, bounds, resolution: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Points of the plane ``x[axis] = position`` over ``bounds``.

    Parameters
    ----------
    axis : int
        0, 1 or 2.
    position : float
        Plane coordinate along ``axis``.
    bounds : ((3,) float, (3,) float)
        Box ``(lo, hi)`` the plane is cut from.
    resolution : int
        Samples per side.

    Returns
    -------
    points : (resolution * resolution, 3) float64
        Row-major image order (see the module docstring).
    shape : (int, int)
        ``(resolution, resolution)``.
    """
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    u_axis, v_axis = free_axes(axis)
    u = np.linspace(lo[u_axis], hi[u_axis], resolution)
    v = np.linspace(lo[v_axis], hi[v_axis], resolution)
    vv, uu = np.meshgrid(v[::-1], u, indexing="ij")  # image rows top-down along decreasing v
    pts = np.empty((resolution * resolution, 3))
    pts[:, axis] = position
    pts[:, u_axis] = uu.ravel()
    pts[:, v_axis] = vv.ravel()
    return pts, (resolution, resolution)


def pixel_to_point(axis: int, position: float, bounds, resolution: int, row: float, col: float) -> np.ndarray:
    """(3,) unit-frame point at image pixel (row, col) of a slice; inverse of :func:`point_to_pixel`."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    u_axis, v_axis = free_axes(axis)
    step = (hi - lo) / (resolution - 1)
    point = np.empty(3)
    point[axis] = position
    point[u_axis] = lo[u_axis] + col * step[u_axis]
    point[v_axis] = hi[v_axis] - row * step[v_axis]
    return point


def point_to_pixel(axis: int, bounds, resolution: int, points: np.ndarray) -> np.ndarray:
    """(n, 2) fractional (row, col) pixel coordinates of (n, 3) points projected onto a slice."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    u_axis, v_axis = free_axes(axis)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    step = (hi - lo) / (resolution - 1)
    rows = (hi[v_axis] - points[:, v_axis]) / step[v_axis]
    cols = (points[:, u_axis] - lo[u_axis]) / step[u_axis]
    return np.stack([rows, cols], axis=1)


def evaluate_points(field: Field, points: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """(n,) float32 signed distances of (n, 3) points, ``batch`` points per field call."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    count = len(points)
    if count == 1:
        # point-cloud-utils 0.34 answers a single query point wrongly (it reads the (1, 3) array
        # another way round); a duplicate row makes it a proper (2, 3) query.
        points = np.repeat(points, 2, axis=0)
    out = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), batch):
        chunk = points[start : start + batch]
        if len(chunk) == 1:
            chunk = np.repeat(chunk, 2, axis=0)
        out[start : start + batch] = np.asarray(field(chunk), dtype=np.float32).reshape(-1)[: len(points) - start]
    out = out[:count]
    if not np.all(np.isfinite(out)):
        raise SdfkitError("the field returned NaN or infinite distances")
    return out


def evaluate_slice(field: Field, axis: int, position: float, bounds, resolution: int = 256,
                   batch: int = EVAL_BATCH) -> np.ndarray:
    """(R, R) float32 signed distances (negative inside) on an axis-aligned plane, in image orientation."""
    axis = axis_index(axis)
    resolution = check_resolution(resolution)
    pts, shape = slice_points(axis, position, bounds, resolution)
    return evaluate_points(field, pts, batch).reshape(shape)


def auto_range(values: np.ndarray) -> float:
    """A colour-range limit that shows detail near the surface: the 99th percentile of |d|."""
    limit = float(np.percentile(np.abs(values), 99))
    return limit if limit > 0 else 1.0


def zero_contour(values: np.ndarray) -> np.ndarray:
    """(H, W) bool mask of the zero level: of each pair of 4-neighbours whose signs differ
    (negative vs non-negative), the pixel nearer to zero. One pixel wide."""
    neg = values < 0
    mag = np.abs(values)
    mask = np.zeros(values.shape, dtype=bool)
    for a, b, ma, mb in (
        (neg[:-1], neg[1:], mag[:-1], mag[1:]),  # vertical neighbours
        (neg[:, :-1], neg[:, 1:], mag[:, :-1], mag[:, 1:]),  # horizontal neighbours
    ):
        cross = a != b
        first = cross & (ma <= mb)
        second = cross & (ma > mb)
        if a.shape[0] == values.shape[0] - 1:
            mask[:-1] |= first
            mask[1:] |= second
        else:
            mask[:, :-1] |= first
            mask[:, 1:] |= second
    return mask


def iso_lines(values: np.ndarray, step: float) -> np.ndarray:
    """(H, W) bool mask of the level sets ``d = k * step`` (k != 0): pixels whose band
    ``floor(d / step)`` differs from their lower or right neighbour's."""
    bands = np.floor(values / step)
    # The zero level has its own contour; keep iso-lines off it.
    bands[(values >= -step) & (values < step)] = 0
    mask = np.zeros(values.shape, dtype=bool)
    mask[:-1] |= bands[:-1] != bands[1:]
    mask[:, :-1] |= bands[:, :-1] != bands[:, 1:]
    return mask


def colorize(values: np.ndarray, vmax: float | None = None, iso_step: float | None = None,
             contour: bool = True) -> np.ndarray:
    """Signed distances to a picture.

    Parameters
    ----------
    values : (H, W) float
        Signed distances, negative inside.
    vmax : float, optional
        Colour-range limit: |d| >= vmax gets the full inside/outside colour. Default :func:`auto_range`.
    iso_step : float, optional
        Spacing of iso-lines; 0 turns them off. Default ``vmax / DEFAULT_ISO_LINES``.
    contour : bool
        Draw the zero level in black.

    Returns
    -------
    image : (H, W, 3) uint8
    """
    values = np.asarray(values, dtype=np.float64)
    vmax = float(vmax) if vmax else auto_range(values)
    t = np.clip(values / vmax, -1.0, 1.0)[..., None]
    inside, outside = SURFACE_RGB + (INSIDE_RGB - SURFACE_RGB) * (-t), SURFACE_RGB + (OUTSIDE_RGB - SURFACE_RGB) * t
    rgb = np.where(t < 0, inside, outside)
    if iso_step is None:
        iso_step = vmax / DEFAULT_ISO_LINES
    if iso_step > 0:
        rgb[iso_lines(values, iso_step)] *= ISO_SHADE
    if contour:
        rgb[zero_contour(values)] = 0.0
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def slice_image(field: Field, axis: int, position: float, bounds, resolution: int = 256,
                vmax: float | None = None, iso_step: float | None = None) -> np.ndarray:
    """(R, R, 3) uint8 picture of the field on one plane (see :func:`colorize`)."""
    return colorize(evaluate_slice(field, axis, position, bounds, resolution), vmax=vmax, iso_step=iso_step)


def slice_positions(bounds, axis: int, count: int) -> np.ndarray:
    """(count,) plane positions spread evenly inside the box along ``axis`` (the centre when count is 1)."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    # Interior points of count + 1 equal intervals: never the box faces, where a slice is empty.
    return lo[axis] + (hi[axis] - lo[axis]) * np.arange(1, count + 1) / (count + 1)


def _label(panel: Image.Image, text: str) -> None:
    draw = ImageDraw.Draw(panel)
    box = draw.textbbox((4, 3), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(255, 255, 255))
    draw.text((4, 3), text, fill=(0, 0, 0))


def slice_grid(field: Field, bounds, count: int = 3, resolution: int = 256, vmax: float | None = None,
               axes: Sequence[int] = (0, 1, 2), units: float = 1.0) -> Image.Image:
    """A sheet of slices: one row per axis, ``count`` evenly spread planes per row.

    ``vmax`` defaults to one range shared by every panel, so colours compare across them.
    ``units`` scales the printed plane positions (1 for the unit frame).
    """
    resolution = check_resolution(resolution)
    if count < 1 or count > 16:
        raise SdfkitError(f"slice count must be in [1, 16] (got {count})")
    rows = []
    for axis in axes:
        rows.append([(axis, pos, evaluate_slice(field, axis, pos, bounds, resolution))
                     for pos in slice_positions(bounds, axis, count)])
    if vmax is None:
        vmax = auto_range(np.concatenate([v.ravel() for row in rows for _, _, v in row]))
    gap = 4
    sheet = Image.new("RGB", (count * resolution + (count - 1) * gap, len(rows) * resolution + (len(rows) - 1) * gap),
                      (255, 255, 255))
    for r, row in enumerate(rows):
        for c, (axis, pos, values) in enumerate(row):
            panel = Image.fromarray(colorize(values, vmax=vmax))
            _label(panel, f"{AXIS_NAMES[axis]} = {pos * units:.3g}")
            sheet.paste(panel, (c * (resolution + gap), r * (resolution + gap)))
    return sheet


def write_slices(path: str | Path, field: Field, bounds, count: int = 3, resolution: int = 256,
                 vmax: float | None = None) -> Path:
    """Write :func:`slice_grid` as a PNG, atomically."""
    from sdfkit.io import atomic_path

    sheet = slice_grid(field, bounds, count=count, resolution=resolution, vmax=vmax)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(path)
