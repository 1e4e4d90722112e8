"""Parts grouped into objects, and the automatic grid resolution they give, on synthetic boxes and real CAD soup."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from data_prep.mesh import load_mesh
from data_prep.objects import CAD_MIN_PARTS, group_boxes, object_diagonals, object_sizes, part_boxes
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


def _resolution_by_hand(mesh: trimesh.Trimesh, cells: float) -> int:
    """A single object's resolution: its longest side over (its diagonal / cells)."""
    extent = np.ptp(np.asarray(mesh.vertices), axis=0)
    return int(round(extent.max() / (np.linalg.norm(extent) / cells)))


def test_cad_objects_get_their_own_cells_and_one_part_objects_do_not():
    cad = _boxes([(0, 0, 0), (0.9, 0, 0), (1.8, 0, 0), (2.7, 0, 0), (3.6, 0, 0)])  # five touching parts
    assert object_sizes(cad)[1].tolist() == [5]
    assert auto_resolution(cad, 40.0, 160, cells_per_cad_object=60.0) == _resolution_by_hand(cad, 60.0)
    assert auto_resolution(cad, 40.0, 160) == _resolution_by_hand(cad, 40.0)
    three = _boxes([(0, 0, 0), (0.9, 0, 0), (1.8, 0, 0)])  # fewer parts than CAD_MIN_PARTS
    assert CAD_MIN_PARTS > 3 and auto_resolution(three, 40.0, 160, cells_per_cad_object=60.0) == \
        _resolution_by_hand(three, 40.0)
    single = trimesh.creation.capsule(height=3.0, radius=0.4)
    assert auto_resolution(single, 40.0, 160, cells_per_cad_object=60.0) == _resolution_by_hand(single, 40.0)


def test_the_cad_rule_leaves_scanned_meshes_and_the_scene_alone_and_takes_every_airplane(shared_meshes):
    plain = sorted((shared_meshes / "val").glob("*.obj")) + sorted((shared_meshes / "train").glob("*.obj"))
    for path in [*plain, shared_meshes / "scene_a.obj"]:
        mesh = load_mesh(path)
        assert auto_resolution(mesh, 40.0, 160, cells_per_cad_object=60.0) == auto_resolution(mesh, 40.0, 160), path
    for path in sorted((shared_meshes / "airplanes" / "val").glob("*.ply")):
        mesh = load_mesh(path)
        assert auto_resolution(mesh, 40.0, 160, cells_per_cad_object=60.0) > auto_resolution(mesh, 40.0, 160), path
