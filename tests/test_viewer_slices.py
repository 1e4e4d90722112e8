"""Slices of signed distance fields: sampling, colours, contours, sheets (viewer.slices)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from sdfkit.errors import SdfkitError
from sdfkit.extract import evaluate_points
from sdfkit.field import NeuralField
from sdfkit.models.latent_grid import GlobalGrid
from viewer.slices import (
    CLAMP_EDGE,
    CLAMPED_INSIDE_RGB,
    CLAMPED_OUTSIDE_RGB,
    axis_index,
    check_resolution,
    clamp_distance,
    colorize,
    evaluate_slice,
    iso_lines,
    pixel_to_point,
    point_to_pixel,
    slice_points,
    zero_contour,
)

from helpers import random_decoder, small_config

BOX = ((-1.0, -0.5, -0.25), (1.0, 0.5, 0.75))
# The picture's (right, up) axes of each slice, written out: +y up wherever it lies in the plane.
RIGHT_UP = {0: (2, 1), 1: (0, 2), 2: (0, 1)}
# A contour pixel is the grid point nearer to zero of a sign-changing pair: within half a pixel of
# the true level set in the pair's direction, so within about one pixel overall.
CONTOUR_TOL_PX = 1.0


def sphere_field(radius: float = 0.5, centre=(0.0, 0.0, 0.0)):
    centre = np.asarray(centre)
    return lambda p: (np.linalg.norm(np.asarray(p, dtype=np.float64) - centre, axis=1) - radius).astype(np.float32)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_points_match_a_pixel_by_pixel_reference(axis):
    res = 7
    pts, shape = slice_points(axis, 0.125, BOX, res)
    lo, hi = np.asarray(BOX[0]), np.asarray(BOX[1])
    u, v = RIGHT_UP[axis]
    grid = pts.reshape(res, res, 3)
    assert shape == (res, res)
    for row in range(res):
        for col in range(res):
            expected = np.empty(3)
            expected[axis] = 0.125
            expected[u] = lo[u] + (hi[u] - lo[u]) * col / (res - 1)
            expected[v] = hi[v] - (hi[v] - lo[v]) * row / (res - 1)  # v points up: row 0 is the top
            np.testing.assert_allclose(grid[row, col], expected, atol=1e-12)
            np.testing.assert_allclose(pixel_to_point(axis, 0.125, BOX, res, row, col), expected, atol=1e-12)
    np.testing.assert_allclose(point_to_pixel(axis, BOX, res, pts), np.argwhere(np.ones(shape)), atol=1e-9)


def _zero_contour_reference(values):
    h, w = values.shape
    mask = np.zeros((h, w), dtype=bool)
    for r in range(h):
        for c in range(w):
            for dr, dc in ((1, 0), (0, 1)):
                r2, c2 = r + dr, c + dc
                if r2 < h and c2 < w and (values[r, c] < 0) != (values[r2, c2] < 0):
                    if abs(values[r, c]) <= abs(values[r2, c2]):
                        mask[r, c] = True
                    else:
                        mask[r2, c2] = True
    return mask


def _iso_reference(values, step):
    h, w = values.shape
    band = lambda x: 0 if -step <= x < step else int(np.floor(x / step))  # noqa: E731
    mask = np.zeros((h, w), dtype=bool)
    for r in range(h):
        for c in range(w):
            if r + 1 < h and band(values[r, c]) != band(values[r + 1, c]):
                mask[r, c] = True
            if c + 1 < w and band(values[r, c]) != band(values[r, c + 1]):
                mask[r, c] = True
    return mask


def test_zero_contour_and_iso_lines_match_loop_references(rng):
    values = rng.normal(size=(23, 19)).astype(np.float32)
    values[5:9, 3:12] = 0.0  # exact zeros count as outside (non-negative)
    np.testing.assert_array_equal(zero_contour(values), _zero_contour_reference(values))
    np.testing.assert_array_equal(iso_lines(values, 0.4), _iso_reference(values, 0.4))


def test_colorize_matches_the_colour_map_reference(rng):
    # The map, point by point: deep blue at -vmax, blue half-way, white at 0, orange half-way, deep orange at vmax.
    stops = [(-1.0, (0.03, 0.19, 0.56)), (-0.5, (0.23, 0.50, 0.92)), (0.0, (1.0, 1.0, 1.0)),
             (0.5, (0.98, 0.60, 0.20)), (1.0, (0.72, 0.24, 0.00))]
    values = rng.uniform(-2, 2, size=(9, 11))
    image = colorize(values, vmax=1.5, iso_step=0, contour=False)
    for (r, c), d in np.ndenumerate(values):
        t = min(max(d / 1.5, -1.0), 1.0)
        for (t0, c0), (t1, c1) in zip(stops[:-1], stops[1:]):
            if t0 <= t <= t1:
                expected = np.round((np.array(c0) + (np.array(c1) - c0) * (t - t0) / (t1 - t0)) * 255)
                break
        np.testing.assert_allclose(image[r, c], expected, atol=1)


def test_colorize_marks_the_clamp_band_and_draws_no_iso_lines_beyond_it():
    clamp = 0.2
    values = np.linspace(-0.5, 0.5, 101)[None, :].repeat(5, axis=0)  # d grows left to right
    image = colorize(values, clamp=clamp).astype(int)
    beyond = np.abs(values[0]) >= clamp * CLAMP_EDGE
    # Beyond the band: the pale tint of the side, every pixel the same (no iso-lines, no gradient).
    np.testing.assert_array_equal(image[2, beyond & (values[0] < 0)], np.round(CLAMPED_INSIDE_RGB * 255)[None].repeat(
        (beyond & (values[0] < 0)).sum(), axis=0))
    np.testing.assert_array_equal(image[2, beyond & (values[0] > 0)], np.round(CLAMPED_OUTSIDE_RGB * 255)[None].repeat(
        (beyond & (values[0] > 0)).sum(), axis=0))
    # Within the band: the colour range is the band, so colours saturate towards its edge...
    first = int(np.argmax(~beyond))  # the first column within the band: deepest blue
    assert image[2, first, 2] > 120 and image[2, first, 0] < 40
    # ...and the iso-lines are drawn there.
    assert iso_lines(values, clamp * CLAMP_EDGE / 5)[2, ~beyond].any()
    assert not np.array_equal(colorize(values, clamp=clamp), colorize(values, vmax=clamp * CLAMP_EDGE))


def test_clamp_distance_of_a_fitted_field_and_of_an_exact_one():
    cfg = small_config()
    grid = GlobalGrid.around(np.full(3, -0.5), np.full(3, 0.5), latent_dim=cfg.model.latent_dim)
    field = NeuralField(random_decoder(cfg), grid, band=2.0)
    assert clamp_distance(field) == pytest.approx(2.0 * grid.spec.cell)  # the band is in cells
    # Outside its box a fitted field answers the clamp distance itself: that is what gets marked.
    assert field(np.array([[3.0, 0.0, 0.0], [0.0, -3.0, 0.0]], np.float32)) == pytest.approx(clamp_distance(field))
    assert clamp_distance(sphere_field()) is None


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_sphere_slice_has_blue_inside_orange_outside_and_the_contour_on_the_circle(axis):
    res, radius = 121, 0.4
    box = ((-1, -1, -1), (1, 1, 1))
    values = evaluate_slice(sphere_field(radius), axis, 0.0, box, res)
    image = colorize(values, vmax=0.5)
    centre = res // 2
    assert image[centre, centre, 2] > image[centre, centre, 0]  # blue inside
    assert image[2, 2, 0] > image[2, 2, 2]  # orange outside
    black = np.argwhere(np.all(image == 0, axis=-1))
    pixel = 2.0 / (res - 1)
    radii = np.hypot(*(black - centre).T) * pixel
    assert len(black) > 100 and np.all(np.abs(radii - radius) <= CONTOUR_TOL_PX * pixel)
    # Iso-lines are drawn (darker pixels that are neither the contour nor the plain map).
    assert iso_lines(values, 0.1).sum() > 100


@pytest.mark.parametrize("axis,position", [(0, 0.05), (1, -0.2), (2, 0.3)])
def test_exact_slice_contour_lies_on_the_mesh_cross_section(shared_meshes, axis, position):
    """The zero contour of the exact SDF against trimesh's plane section of the same mesh."""
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import MeshSDF

    unit, _ = normalize_mesh(load_mesh(shared_meshes / "val" / "penguin.obj"))
    res = 160
    box = (unit.bounds[0] - 0.1, unit.bounds[1] + 0.1)
    values = evaluate_slice(MeshSDF(unit), axis, position, box, res)
    contour = np.argwhere(zero_contour(values)).astype(np.float64)
    normal = np.eye(3)[axis]
    section = unit.section(plane_origin=normal * position, plane_normal=normal)
    assert section is not None
    # Samples every quarter pixel along the section's polylines.
    samples = []
    for entity in section.entities:
        line = point_to_pixel(axis, box, res, entity.discrete(section.vertices))
        for a, b in zip(line[:-1], line[1:]):
            steps = max(2, int(np.ceil(np.linalg.norm(b - a) * 4)))
            samples.append(a + (b - a) * np.linspace(0, 1, steps)[:, None])
    samples = np.concatenate(samples)
    assert len(contour) > 50
    d_contour, _ = cKDTree(samples).query(contour)
    d_section, _ = cKDTree(contour).query(samples)
    assert np.percentile(d_contour, 99) <= 1.5 and np.percentile(d_section, 99) <= 1.5
    assert d_contour.mean() < 0.75


def test_evaluate_refuses_bad_values():
    with pytest.raises(SdfkitError, match="NaN"):
        evaluate_points(lambda p: np.full(len(p), np.nan, dtype=np.float32), np.zeros((4, 3)))
    for bad in (0, 7, 4096, 2.5, "many"):
        with pytest.raises(SdfkitError, match="resolution"):
            check_resolution(bad)
    assert check_resolution(64) == 64
    assert axis_index("y") == 1 and axis_index(2) == 2
    with pytest.raises(SdfkitError, match="axis"):
        axis_index("w")
