"""Axis-aligned slices of a signed distance field as images.

Sign convention: signed distance is NEGATIVE INSIDE, positive outside.

Colours: a diverging map, blue inside (negative) and orange outside
(positive), white at the surface, saturating at the colour range ``vmax``; the
zero level drawn as a sharp black one-pixel contour and iso-lines every
``iso_step`` as darker bands. A learned field is only trained within its clamp
band (|d| < ``clamp``): beyond it the colours turn pale and carry no iso-lines,
so the band's edge reads as an edge and not as noise.

Orientation, one rule for every axis: the picture's horizontal axis ``u``
increases to the right and its vertical axis ``v`` increases upwards, and +y
(the up axis of the renders and the 3D viewer) points up wherever it lies in the
plane: x-slice (u, v) = (z, y), y-slice (x, z), z-slice (x, y). Image rows run
from high ``v`` (row 0) to low ``v``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sdfkit.errors import SdfkitError
from sdfkit.extract import evaluate_points

Field = Callable[[np.ndarray], np.ndarray]

AXES = {"x": 0, "y": 1, "z": 2}
AXIS_NAMES = "xyz"
MIN_RESOLUTION = 8
MAX_RESOLUTION = 2048
# Points per field call: bounds peak memory of the field (a 256 x 256 slice is one batch).
EVAL_BATCH = 1 << 16
#: (u, v) axes of the picture of a slice across each axis (see the module docstring).
PLANE_AXES = {0: (2, 1), 1: (0, 2), 2: (0, 1)}
#: The colour map, from -vmax (t = -1) through the surface (t = 0) to +vmax (t = 1): saturated at
#: both ends and already strong half-way, so a field that stays near the surface is not pale.
RAMP_T = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
RAMP_RGB = np.array([
    [0.03, 0.19, 0.56],
    [0.23, 0.50, 0.92],
    [1.00, 1.00, 1.00],
    [0.98, 0.60, 0.20],
    [0.72, 0.24, 0.00],
])
INSIDE_RGB = RAMP_RGB[0]
OUTSIDE_RGB = RAMP_RGB[-1]
#: Beyond the clamp band: pale tints that keep the side readable but show no magnitude.
CLAMPED_INSIDE_RGB = np.array([0.78, 0.82, 0.90])
CLAMPED_OUTSIDE_RGB = np.array([0.93, 0.86, 0.79])
# Iso-lines darken the colour underneath by this factor, so the sign stays readable.
ISO_SHADE = 0.72
DEFAULT_ISO_LINES = 5  # iso-lines between the surface and the colour-range limit
# A learned field's values approach its clamp band without reaching it exactly; from this fraction of
# the band on they are treated as clamped (the field there says only which side it is).
CLAMP_EDGE = 0.9
# Largest default colour range, as a fraction of the box's largest side: detail near the surface
# matters more than the far field.
RANGE_FRACTION = 0.125


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
    """The picture's (u, v) axes for a slice across ``axis``: u to the right, v up."""
    return PLANE_AXES[axis]


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


def evaluate_slice(field: Field, axis: int, position: float, bounds, resolution: int = 256,
                   batch: int = EVAL_BATCH) -> np.ndarray:
    """(R, R) float32 signed distances (negative inside) on an axis-aligned plane, in image orientation."""
    axis = axis_index(axis)
    resolution = check_resolution(resolution)
    pts, shape = slice_points(axis, position, bounds, resolution)
    return evaluate_points(field, pts, batch_size=batch).reshape(shape)


def auto_range(values: np.ndarray) -> float:
    """A colour-range limit that shows detail near the surface: the 99th percentile of |d|."""
    limit = float(np.percentile(np.abs(values), 99))
    return limit if limit > 0 else 1.0


def default_range(values: np.ndarray, bounds, clamp: float | None = None) -> float:
    """The colour range of a set of slices: the clamp band where the field has one, else
    :func:`auto_range` but at most :data:`RANGE_FRACTION` of the box's largest side."""
    if clamp:
        return clamp * CLAMP_EDGE
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    return min(float(np.max(hi - lo)) * RANGE_FRACTION, auto_range(values))


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


def ramp(t: np.ndarray) -> np.ndarray:
    """(..., 3) float colours of the map at ``t`` in [-1, 1] (clipped): -1 inside, 0 surface, 1 outside."""
    t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
    return np.stack([np.interp(t, RAMP_T, RAMP_RGB[:, c]) for c in range(3)], axis=-1)


def clamped_mask(values: np.ndarray, clamp: float | None) -> np.ndarray:
    """(H, W) bool: where |d| reaches the clamp band, so the field says only its side there."""
    if clamp is None:
        return np.zeros(np.shape(values), dtype=bool)
    return np.abs(values) >= clamp * CLAMP_EDGE


def colorize(values: np.ndarray, vmax: float | None = None, iso_step: float | None = None,
             contour: bool = True, clamp: float | None = None) -> np.ndarray:
    """Signed distances to a picture.

    Parameters
    ----------
    values : (H, W) float
        Signed distances, negative inside.
    vmax : float, optional
        Colour-range limit: |d| >= vmax gets the full inside/outside colour. Default: ``clamp``
        when given, else :func:`auto_range`.
    iso_step : float, optional
        Spacing of iso-lines; 0 turns them off. Default ``vmax / DEFAULT_ISO_LINES``.
    contour : bool
        Draw the zero level in black.
    clamp : float, optional
        The field's clamp band: where |d| >= ``clamp * CLAMP_EDGE`` only the sign is shown, in pale
        tints without iso-lines (:data:`CLAMPED_INSIDE_RGB`, :data:`CLAMPED_OUTSIDE_RGB`).

    Returns
    -------
    image : (H, W, 3) uint8
    """
    values = np.asarray(values, dtype=np.float64)
    if not vmax:
        vmax = clamp * CLAMP_EDGE if clamp else auto_range(values)
    vmax = float(vmax)
    rgb = ramp(values / vmax)
    if iso_step is None:
        iso_step = vmax / DEFAULT_ISO_LINES
    if iso_step > 0:
        rgb[iso_lines(values, iso_step)] *= ISO_SHADE
    clamped = clamped_mask(values, clamp)
    rgb[clamped] = np.where(values[clamped, None] < 0, CLAMPED_INSIDE_RGB, CLAMPED_OUTSIDE_RGB)
    if contour:
        rgb[zero_contour(values)] = 0.0
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def clamp_distance(field: Field) -> float | None:
    """The distance beyond which ``field`` is clamped, in its frame, or None for an exact field.

    A fitted :class:`sdfkit.field.NeuralField` is trained on distances clamped to ``band``
    cells (and answers ``band`` cells outside its active tiles).
    """
    band, grid = getattr(field, "band", None), getattr(field, "grid", None)
    cell = getattr(getattr(grid, "spec", None), "cell", None)
    if band is None or cell is None:
        return None
    return float(band) * float(cell)


def slice_positions(bounds, axis: int, count: int) -> np.ndarray:
    """(count,) plane positions spread evenly inside the box along ``axis`` (the centre when count is 1)."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    # Interior points of count + 1 equal intervals: never the box faces, where a slice is empty.
    return lo[axis] + (hi[axis] - lo[axis]) * np.arange(1, count + 1) / (count + 1)
