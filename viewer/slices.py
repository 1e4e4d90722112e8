"""Axis-aligned slices of a signed distance field as images.

Colours: a diverging map, blue inside (negative) and orange outside
(positive), white at the surface; the zero level drawn as a sharp black
contour and iso-lines every ``iso_step`` in lighter grey.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

AXES = {"x": 0, "y": 1, "z": 2}


def slice_points(axis: int, position: float, bounds, resolution: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(R*R, 3) points of the plane ``x_axis = position`` over ``bounds``; rows run along the second free axis."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    free = [a for a in range(3) if a != axis]
    u = np.linspace(lo[free[0]], hi[free[0]], resolution)
    v = np.linspace(lo[free[1]], hi[free[1]], resolution)
    vv, uu = np.meshgrid(v[::-1], u, indexing="ij")  # image rows top-down along v
    pts = np.empty((resolution * resolution, 3))
    pts[:, axis] = position
    pts[:, free[0]] = uu.ravel()
    pts[:, free[1]] = vv.ravel()
    return pts, (resolution, resolution)


def evaluate_slice(field: Callable[[np.ndarray], np.ndarray], axis: int, position: float, bounds, resolution: int = 256) -> np.ndarray:
    """(R, R) float32 signed distances on an axis-aligned plane (image orientation: v up)."""
    pts, shape = slice_points(axis, position, bounds, resolution)
    return np.asarray(field(pts.astype(np.float32)), dtype=np.float32).reshape(shape)


def colorize(values: np.ndarray, vmax: float | None = None, iso_step: float | None = None, contour: bool = True) -> np.ndarray:
    """(H, W) signed distances -> (H, W, 3) uint8 image with the zero contour and iso-lines."""
    vmax = float(vmax) if vmax else float(np.percentile(np.abs(values), 99) or 1.0)
    t = np.clip(values / vmax, -1.0, 1.0)[..., None]
    inside = np.array([0.13, 0.35, 0.80])
    outside = np.array([0.90, 0.45, 0.10])
    white = np.ones(3)
    rgb = np.where(t < 0, white + (inside - white) * (-t), white + (outside - white) * t)
    if iso_step is None:
        iso_step = vmax / 5.0
    if iso_step > 0:
        bands = np.floor(values / iso_step)
        edge = np.zeros(values.shape, dtype=bool)
        edge[:-1] |= bands[:-1] != bands[1:]
        edge[:, :-1] |= bands[:, :-1] != bands[:, 1:]
        rgb[edge] = rgb[edge] * 0.75
    if contour:
        sign = values < 0
        zero = np.zeros(values.shape, dtype=bool)
        zero[:-1] |= sign[:-1] != sign[1:]
        zero[:, :-1] |= sign[:, :-1] != sign[:, 1:]
        rgb[zero] = 0.0
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def slice_image(field, axis: int, position: float, bounds, resolution: int = 256, vmax: float | None = None) -> np.ndarray:
    """(R, R, 3) uint8 picture of the field on one plane."""
    return colorize(evaluate_slice(field, axis, position, bounds, resolution), vmax=vmax)
