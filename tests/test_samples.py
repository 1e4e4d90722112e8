"""``sdfkit.samples``: prepared files, meshes sampled on demand and cached, random rotations."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.errors import SdfkitError
from sdfkit.config import SamplingChoice
from sdfkit.samples import load_or_prepare, random_rotation

CHOICE = SamplingChoice(num_points=400)


@pytest.mark.parametrize("seed", [0, 1, 17])
def test_random_rotations_are_proper_and_seeded(seed):
    r = random_rotation(seed)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_array_equal(random_rotation(seed), r)
    assert not np.allclose(random_rotation(seed + 1), r)


def test_a_mesh_is_sampled_once_then_read_from_the_cache(sphere_mesh_file, tmp_path):
    cache = tmp_path / "cache"
    first = load_or_prepare(sphere_mesh_file, CHOICE, cache_dir=cache, seed=3)
    entries = list(cache.glob("*.npz"))
    assert len(entries) == 1 and len(first.points) == 400
    stamp = entries[0].stat().st_mtime_ns
    again = load_or_prepare(sphere_mesh_file, CHOICE, cache_dir=cache, seed=3)
    assert entries[0].stat().st_mtime_ns == stamp  # read, not rewritten
    np.testing.assert_array_equal(again.points, first.points)
    np.testing.assert_array_equal(again.sdf, first.sdf)
    # A damaged entry is rebuilt with the same samples (sampling is seeded).
    entries[0].write_bytes(b"not an npz")
    rebuilt = load_or_prepare(sphere_mesh_file, CHOICE, cache_dir=cache, seed=3)
    np.testing.assert_array_equal(rebuilt.sdf, first.sdf)
    # Another seed is another entry.
    load_or_prepare(sphere_mesh_file, CHOICE, cache_dir=cache, seed=4)
    assert len(list(cache.glob("*.npz"))) == 2


def test_a_rotated_copy_keeps_the_distances_of_the_turned_mesh(sphere_mesh_file):
    """A sphere turned about its own centre has the same surface: its samples' distances stay exact."""
    samples = load_or_prepare(sphere_mesh_file, CHOICE, seed=0, rotation=2)
    assert samples.source.endswith("#rotation2") and samples.settings["rotation"] == 2
    radius = np.linalg.norm(samples.surface_points, axis=1)
    assert np.ptp(radius) < 0.02  # still a sphere about the origin of the unit frame


def test_prepared_files_load_and_missing_meshes_are_one_line(sphere_mesh_file, tmp_path):
    samples = load_or_prepare(sphere_mesh_file, CHOICE)
    samples.save(tmp_path / "s.npz")
    np.testing.assert_array_equal(load_or_prepare(tmp_path / "s.npz", CHOICE).points, samples.points)
    with pytest.raises(SdfkitError, match="mesh file not found"):
        load_or_prepare(tmp_path / "none.obj", CHOICE)
