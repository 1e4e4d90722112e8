"""Sheets of slices that explain themselves (viewer.figures): labels, colour bar, aspect, units."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from data_prep.mesh import Normalization
from sdfkit.errors import SdfkitError
from viewer.figures import Frame, panel_extent, slice_sheet, write_slices
from viewer.slices import CLAMPED_INSIDE_RGB, CLAMPED_OUTSIDE_RGB

TUBE_RADIUS, RING_RADIUS = 0.2, 0.6
# A flat box: a picture that stretched each panel to a square would squash the tube 3:1.
FLAT_BOX = ((-1.0, -0.3, -1.0), (1.0, 0.3, 1.0))


def torus_field(points: np.ndarray) -> np.ndarray:
    """Exact SDF of a torus around the y axis (ring radius 0.6, tube radius 0.2), negative inside."""
    p = np.asarray(points, dtype=np.float64)
    ring = np.hypot(p[:, 0], p[:, 2]) - RING_RADIUS
    return (np.hypot(ring, p[:, 1]) - TUBE_RADIUS).astype(np.float32)


def surface(image: np.ndarray) -> np.ndarray:
    """Pixels of the zero contour: black (iso-lines are lighter, and the colours never get this dark)."""
    return (image < 70).all(axis=-1)


def crop(image: np.ndarray, box, inset: int = 0) -> np.ndarray:
    """The pixels of a (left, top, right, bottom) box; ``inset`` pixels in from each side (off the frame)."""
    left, top, right, bottom = box
    return image[top + inset:bottom - inset, left + inset:right - inset]


def test_a_torus_tube_stays_round_in_a_flat_box():
    sheet = slice_sheet(torus_field, FLAT_BOX, count=1, resolution=128)
    # Row x (x = 0) and row z (z = 0) cut the tube twice: round cross-sections of radius 0.2.
    for index in (0, 2):
        panel = crop(sheet.image, sheet.panel_boxes[index], inset=2)
        labels, count = ndimage.label(surface(panel), structure=np.ones((3, 3)))
        assert count == 2
        for blob in ndimage.find_objects(labels):
            height, width = blob[0].stop - blob[0].start, blob[1].stop - blob[1].start
            assert width == pytest.approx(height, rel=0.12), (index, width, height)
            # The tube's diameter is a fifth of the panel's width (the box is 2 wide).
            assert width == pytest.approx(panel.shape[1] * 2 * TUBE_RADIUS / 2.0, rel=0.15)
        # The panel itself has the box's proportions (2 by 0.6), not a square.
        left, top, right, bottom = sheet.panel_boxes[index]
        assert (right - left) / (bottom - top) == pytest.approx(2.0 / 0.6, rel=0.05)


def test_colour_bar_and_axis_labels_are_drawn():
    with_labels = slice_sheet(torus_field, FLAT_BOX, count=2, resolution=64)
    without = slice_sheet(torus_field, FLAT_BOX, count=2, resolution=64, annotate=False)
    assert with_labels.image.shape == without.image.shape
    assert without.colorbar_box is None and with_labels.colorbar_box is not None
    # The colour bar: the map's colours from orange (top) to blue (bottom)...
    bar = crop(with_labels.image, with_labels.colorbar_box, inset=2).astype(int)
    middle = bar[:, bar.shape[1] // 2]
    assert middle[len(middle) // 8, 0] - middle[len(middle) // 8, 2] > 100  # orange near the top
    assert middle[-len(middle) // 8, 2] - middle[-len(middle) // 8, 0] > 100  # blue near the bottom

    def coloured_right_of_panels(sheet) -> int:
        right = max(box[2] for box in sheet.panel_boxes) + 3
        rgb = sheet.image[:, right:].astype(int)
        return int((np.abs(rgb[..., 0] - rgb[..., 2]) > 100).sum())

    # ...right of the panels, where nothing is coloured without it.
    assert coloured_right_of_panels(with_labels) > 500 and coloured_right_of_panels(without) == 0

    def text_rows(sheet, box) -> dict[str, int]:
        """Dark pixels in bands beside and below a panel: its tick labels, then its axis names further out."""
        left, top, right, bottom = box
        dark = sheet.image.astype(int).sum(axis=-1) < 300
        return {"y ticks": int(dark[top:bottom, left - 37:left - 5].sum()),
                "y name": int(dark[top:bottom, left - 50:left - 38].sum()),
                "x ticks": int(dark[bottom + 5:bottom + 20, left:right].sum()),
                "x name": int(dark[bottom + 21:bottom + 40, left:right].sum())}

    for box in with_labels.panel_boxes:
        assert min(text_rows(with_labels, box).values()) >= 5, text_rows(with_labels, box)
    # Without annotations nothing dark lies outside the pictures (their frames included).
    outside = np.ones(without.image.shape[:2], dtype=bool)
    for left, top, right, bottom in without.panel_boxes:
        outside[max(top - 2, 0):bottom + 2, max(left - 2, 0):right + 2] = False
    assert not (without.image.astype(int).sum(axis=-1) < 300)[outside].any()


def test_axes_are_in_the_input_units():
    norm = Normalization(center=(10.0, 20.0, 30.0), scale=2.0)
    box = ((-1.0, -0.5, -0.25), (1.0, 0.5, 0.75))
    frame = Frame.of(norm)
    assert frame.units == "input units" and Frame.of(None).units == "unit frame"
    # Each slice: (right, up) = x: (z, y), y: (x, z), z: (x, y), mapped by x_input = x_unit * 2 + centre.
    assert panel_extent(0, box, frame) == (29.5, 31.5, 19.0, 21.0)
    assert panel_extent(1, box, frame) == (8.0, 12.0, 29.5, 31.5)
    assert panel_extent(2, box, frame) == (8.0, 12.0, 19.0, 21.0)
    # The scale changes the labels and the colour bar's numbers, not the slices themselves.
    a = slice_sheet(torus_field, FLAT_BOX, count=1, resolution=48, normalization=norm)
    b = slice_sheet(torus_field, FLAT_BOX, count=1, resolution=48)
    assert a.panel_boxes != b.panel_boxes or not np.array_equal(a.image, b.image)


def test_write_slices_is_atomic_and_refuses_bad_counts(tmp_path):
    out = tmp_path / "slices.png"
    write_slices(out, torus_field, FLAT_BOX, count=2, resolution=32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slices.png"]
    assert np.asarray(Image.open(out)).shape[2] in (3, 4)
    for bad in (0, 17):
        with pytest.raises(SdfkitError, match="count"):
            slice_sheet(torus_field, FLAT_BOX, count=bad)


def test_the_clamp_band_is_drawn_pale_and_flat():
    def sphere(points):
        return (np.linalg.norm(np.asarray(points, dtype=np.float64), axis=1) - 0.4).astype(np.float32)

    clamp = 0.2
    sheet = slice_sheet(sphere, ((-1.0,) * 3, (1.0,) * 3), count=1, resolution=96, clamp=clamp)
    panel = crop(sheet.image, sheet.panel_boxes[2], inset=3).astype(int)  # z = 0: a circle of radius 0.4
    corner = panel[:10, :10].reshape(-1, 3)  # about 1.3 from the centre: far beyond the band
    np.testing.assert_allclose(corner, np.round(CLAMPED_OUTSIDE_RGB * 255)[None].repeat(len(corner), 0), atol=3)
    centre = panel[panel.shape[0] // 2 - 3:panel.shape[0] // 2 + 3, panel.shape[1] // 2 - 3:panel.shape[1] // 2 + 3]
    np.testing.assert_allclose(centre.reshape(-1, 3), np.round(CLAMPED_INSIDE_RGB * 255)[None].repeat(36, 0), atol=3)
    # Within the band, next to the surface, the colours are the map's, not the tints.
    ring = panel[panel.shape[0] // 2, int(panel.shape[1] * (0.5 + 0.5 * 0.5 / 1.0))]  # x = 0.5: d = 0.1
    assert ring[0] - ring[2] > 60
