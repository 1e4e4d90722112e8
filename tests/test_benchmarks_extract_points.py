"""benchmarks/extract_points.py: the extraction of an earlier commit, imported from git, runs beside this one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.extract_points import extract_module_at
from sdfkit import extract


def sphere(points: np.ndarray) -> np.ndarray:
    return (np.linalg.norm(points, axis=1) - 0.6).astype(np.float32)


def test_an_earlier_extraction_is_imported_from_git_and_gives_the_same_mesh(tmp_path: Path):
    # 13f74f0: the last commit before each child block was tested; it evaluates more points for the same triangles.
    old = extract_module_at("13f74f0", tmp_path)
    assert old is not extract and Path(old.__file__).parent == tmp_path
    old_grid, old_count = old.evaluate_grid_coarse_to_fine(sphere, 65)
    new_grid, new_count = extract.evaluate_grid_coarse_to_fine(sphere, 65)
    assert new_count < old_count
    np.testing.assert_array_equal(extract.marching_cubes(old_grid).faces, extract.marching_cubes(new_grid).faces)
