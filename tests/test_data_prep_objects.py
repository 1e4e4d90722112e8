"""Parts grouped into objects, and the automatic grid resolution they give, on synthetic boxes and real CAD soup."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from data_prep.mesh import load_mesh
from data_prep.objects import group_boxes, object_diagonals, part_boxes
from sdfkit.models.latent_grid import auto_resolution


def _boxes(centers: list[tuple[float, float, float]], size: float = 1.0) -> trimesh.Trimesh:
    return trimesh.util.concatenate([trimesh.creation.box(extents=(size,) * 3).apply_translation(c) for c in centers])


def test_group_boxes_matches_pairwise_loop():
    rng = np.random.default_rng(0)
    lo = rng.uniform(0, 4, (300, 3))
    hi = lo + rng.uniform(0.05, 0.6, (300, 3))
    tol = 0.1
    labels = group_boxes(lo, hi, tol)
    assert 10 < len(set(labels)) < 290  # neither all apart nor all joined: the grouping is exercised
    # slow reference: union-find over every pair
    parent = list(range(len(lo)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(lo)):
        for j in range(len(lo)):
            if all(lo[i, a] <= hi[j, a] + tol and lo[j, a] <= hi[i, a] + tol for a in range(3)):
                parent[root(i)] = root(j)
    ref = np.array([root(i) for i in range(len(lo))])
    for i in range(len(lo)):
        assert np.array_equal(labels == labels[i], ref == ref[i])


def test_touching_parts_are_one_object_and_separated_ones_are_not():
    touching = _boxes([(0, 0, 0), (1.0, 0, 0), (0.5, 0.5, 0.5)])  # faces touch or overlap, no shared edges
    assert len(part_boxes(touching)[0]) == 3
    assert len(object_diagonals(touching)) == 1
    apart = _boxes([(0, 0, 0), (3, 0, 0), (0, 3, 0)])
    assert len(object_diagonals(apart)) == 3


def test_scene_a_still_counts_nine_objects(shared_meshes):
    scene = load_mesh(shared_meshes / "scene_a.obj")
    assert len(object_diagonals(scene)) == 9
    # nine objects on a 3 x 3 grid: about three times a single object's resolution
    assert 90 <= auto_resolution(scene, 40.0, 160) <= 130


@pytest.mark.parametrize("category", ["airplanes", "chairs"])
def test_every_cad_model_gets_a_single_objects_resolution(shared_meshes, category):
    paths = sorted((shared_meshes / category).glob("*/*.ply"))
    assert len(paths) > 50
    resolutions = {p.name: auto_resolution(load_mesh(p), 40.0, 160) for p in paths}
    outside = {name: r for name, r in resolutions.items() if not 20 <= r <= 40}
    assert not outside, f"resolutions outside a single object's 20-40: {outside}"
