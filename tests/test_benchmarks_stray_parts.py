"""benchmarks/stray_parts.py: the components of a fitted mesh, their distance from the input and from the box."""

import numpy as np
import trimesh

from benchmarks.stray_parts import STRAY_CELLS, components


def test_components_measure_a_stray_part_from_the_input_and_from_the_box_face():
    shape = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    blob = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    blob.apply_translation([0.0, 1.2, 0.0])  # 0.15 to 0.25 from the sphere, its top 0.05 below the box's face
    recon = trimesh.util.concatenate([shape, blob])
    cell = 0.1
    lo, hi = np.full(3, -1.3), np.full(3, 1.3)

    parts = components(recon, shape, cell, lo, hi)

    assert [p["faces"] for p in parts] == [len(shape.faces), len(blob.faces)]
    main, stray = parts
    assert main["max_cells"] < 1e-6
    assert 1.4 < stray["min_cells"] < 1.6 and 2.4 < stray["max_cells"] < 2.6
    assert stray["min_cells"] > STRAY_CELLS
    assert abs(stray["box_face_cells"] - 0.5) < 0.01
    assert np.allclose(stray["centroid"], [0.0, 1.2, 0.0], atol=0.01)
