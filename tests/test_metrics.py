"""Metrics against analytic values and an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from data_prep.mesh import load_mesh
from sdfkit.metrics import chamfer_to_surface, distance_to_surface, evaluate_meshes, volumetric_iou


def test_a_mesh_against_itself(shared_meshes):
    mesh = load_mesh(shared_meshes / "val" / "penguin.obj")
    m = evaluate_meshes(mesh, mesh, num_surface=5000, num_volume=100_000)
    assert m["chamfer"] < 1e-12 and m["chamfer_l1"] < 1e-6 and m["hausdorff"] < 1e-5
    assert m["iou"] == 1.0 and m["fscore_1pct"] == 1.0 and m["normal_consistency"] > 0.999


def test_scaled_sphere_matches_the_analytic_chamfer():
    # Radius 1 (GT) against radius s: every point is |1 - s| from the other surface
    # (up to tessellation), so CD = 2 (1 - s)^2 and IoU = s^3.
    gt = trimesh.creation.icosphere(subdivisions=6, radius=1.0)
    s = 0.95
    pred = trimesh.creation.icosphere(subdivisions=6, radius=s)
    m = evaluate_meshes(pred, gt, num_surface=5000, num_volume=200_000)
    assert m["chamfer"] == pytest.approx(2 * (1 - s) ** 2, rel=0.02)
    assert m["iou"] == pytest.approx(s**3, abs=0.005)
    assert m["hausdorff"] == pytest.approx(1 - s, rel=0.05)
    assert m["fscore_1pct"] == 0.0


def test_shift_in_the_gt_frame(shared_meshes):
    gt = load_mesh(shared_meshes / "val" / "torus.obj")
    scale = np.linalg.norm(gt.vertices - gt.bounds.mean(axis=0), axis=1).max()
    shifted = gt.copy()
    shifted.apply_translation([0, 0.002 * scale, 0])  # 0.002 in the unit frame, across the thin axis
    m = evaluate_meshes(shifted, gt, num_surface=5000, num_volume=100_000)
    assert m["hausdorff"] == pytest.approx(0.002, rel=0.05)
    assert 1e-6 < m["chamfer"] < 2 * 0.002**2


def brute_force_distance(points: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    from tests.test_data_prep_sampling import point_triangle_distance

    tri = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]
    return np.array([min(point_triangle_distance(p, *t) for t in tri) for p in points])


def test_surface_distance_against_brute_force(rng):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    pts = rng.uniform(-1.5, 1.5, size=(200, 3))
    d, _ = distance_to_surface(pts, mesh)
    np.testing.assert_allclose(d, brute_force_distance(pts, mesh), atol=1e-9)


def test_point_chamfer_against_a_naive_loop(rng):
    a = trimesh.creation.box()
    b = trimesh.creation.box().apply_translation([0.05, 0, 0])
    m = evaluate_meshes(b, a, num_surface=400, num_volume=10_000)
    # Recompute the DeepSDF-style point-to-sample CD from the same samples with a naive loop.
    from sdfkit.metrics import surface_samples

    norm_scale = np.linalg.norm(a.vertices - a.bounds.mean(axis=0), axis=1).max()
    pa, _ = surface_samples(trimesh.Trimesh((b.vertices - a.bounds.mean(axis=0)) / norm_scale, b.faces), 400, 0)
    pb, _ = surface_samples(trimesh.Trimesh((a.vertices - a.bounds.mean(axis=0)) / norm_scale, a.faces), 400, 1)
    naive = np.mean([min(np.sum((p - q) ** 2) for q in pb) for p in pa]) + np.mean([min(np.sum((q - p) ** 2) for p in pa) for q in pb])
    assert m["chamfer_points"] == pytest.approx(naive, rel=1e-9)
    kd = np.mean(cKDTree(pb).query(pa)[0] ** 2) + np.mean(cKDTree(pa).query(pb)[0] ** 2)
    assert kd == pytest.approx(naive, rel=1e-9)


def test_iou_and_chamfer_building_blocks():
    a = trimesh.creation.box(extents=(1, 1, 1))
    b = trimesh.creation.box(extents=(1, 1, 1)).apply_translation([0.5, 0, 0])
    # The protocol samples GT's box padded by 5%: b reaches 0.05 past it, so IoU = 0.5 / 1.05.
    assert volumetric_iou(b, a, num=200_000) == pytest.approx(0.5 / 1.05, abs=0.01)
    assert chamfer_to_surface(a, a, num=1000) < 1e-12
