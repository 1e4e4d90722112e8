"""Metrics against analytic values and an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from data_prep.mesh import load_mesh
from sdfkit.errors import SdfkitError
from sdfkit.metrics import (
    chamfer_to_surface,
    distance_to_surface,
    evaluate_meshes,
    fscore,
    iou_of_labels,
    normal_consistency,
    surface_samples,
    volume_samples,
    volumetric_iou,
)


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


def brute_force_distance(points: np.ndarray, mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Distance to every triangle, one point at a time: the plane when the projection falls inside the
    triangle (barycentric test), else the nearest of the three edge segments. Returns (n,), (n,) closest face."""
    tri = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]  # (F, 3, 3)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)

    def segment(p, u, v):
        t = np.clip(np.einsum("ij,ij->i", p - u, v - u) / np.einsum("ij,ij->i", v - u, v - u), 0.0, 1.0)
        return np.linalg.norm(p - (u + t[:, None] * (v - u)), axis=1)

    dist, face = [], []
    for p in points:
        q = p - np.einsum("ij,ij->i", p - a, normal)[:, None] * normal  # projection on each plane
        inside = np.ones(len(tri), bool)
        for u, v in ((a, b), (b, c), (c, a)):
            inside &= np.einsum("ij,ij->i", np.cross(v - u, q - u), normal) >= 0
        pp = np.broadcast_to(p, a.shape)
        d = np.minimum.reduce([segment(pp, a, b), segment(pp, b, c), segment(pp, c, a)])
        d = np.where(inside, np.abs(np.einsum("ij,ij->i", p - a, normal)), d)
        dist.append(d.min())
        face.append(np.argmin(d))
    return np.array(dist), np.array(face)


def test_surface_distance_against_brute_force(rng):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    pts = rng.uniform(-1.5, 1.5, size=(200, 3))
    d, face = distance_to_surface(pts, mesh)
    ref, ref_face = brute_force_distance(pts, mesh)
    np.testing.assert_allclose(d, ref, atol=1e-9)
    # The reported face is a closest one (ties between faces sharing an edge are allowed).
    np.testing.assert_allclose(brute_force_distance_to_faces(pts, mesh, face), ref, atol=1e-9)


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


def brute_force_distance_to_faces(points: np.ndarray, mesh: trimesh.Trimesh, faces: np.ndarray) -> np.ndarray:
    """Distance from each point to one given face."""
    return np.array([brute_force_distance(p[None], trimesh.Trimesh(mesh.vertices, mesh.faces[[f]], process=False))[0][0]
                     for p, f in zip(points, faces)])


#: Relative tolerance against closed forms derived for a perfect sphere (tessellation and sampling error).
SPHERE_RTOL = 0.03


def sphere_shift_chamfer(delta: float) -> tuple[float, float]:
    """Chamfer (squared) and L1 between unit spheres whose centres are ``delta`` apart.

    A point p on one sphere is | |p + t| - 1 | from the other; by Archimedes u = p.t/|t| is uniform on
    [-1, 1], so each direction's mean is (1/2) int_{-1}^{1} f(sqrt(1 + 2 u delta + delta^2) - 1) du.
    """
    from scipy.integrate import quad

    gap = lambda u: np.sqrt(1 + 2 * u * delta + delta**2) - 1
    sq = quad(lambda u: gap(u) ** 2, -1, 1)[0] / 2
    l1 = quad(lambda u: abs(gap(u)), -1, 1)[0] / 2
    return 2 * sq, l1


def test_shifted_sphere_matches_the_closed_form():
    gt = trimesh.creation.icosphere(subdivisions=6, radius=1.0)
    delta = 0.03
    pred = gt.copy().apply_translation([delta, 0, 0])
    m = evaluate_meshes(pred, gt, num_surface=20_000, num_volume=200_000)
    cd, l1 = sphere_shift_chamfer(delta)
    assert m["chamfer"] == pytest.approx(cd, rel=SPHERE_RTOL)
    assert m["chamfer_l1"] == pytest.approx(l1, rel=SPHERE_RTOL)
    assert m["hausdorff"] == pytest.approx(delta, rel=SPHERE_RTOL)
    # Two unit balls d apart: lens volume pi/12 (4 + d)(2 - d)^2, IoU = lens / (2 ball - lens).
    lens = np.pi / 12 * (4 + delta) * (2 - delta) ** 2
    assert m["iou"] == pytest.approx(lens / (2 * 4 / 3 * np.pi - lens), abs=0.005)
    assert m["normal_consistency"] > 0.99


def test_fscore_thresholds_on_a_scaled_real_sphere(shared_meshes):
    """val/sphere.obj scaled about its centre by 1.007: every pred sample lies 0.007 x (its face's
    distance to the centre, <= 1) from GT, so F@1% is 1 and F@0.5% is 0 as long as faces are > 0.72 out."""
    gt = load_mesh(shared_meshes / "val" / "sphere.obj")
    centre = gt.bounds.mean(axis=0)
    pred = trimesh.Trimesh((gt.vertices - centre) * 1.007 + centre, gt.faces, process=False)
    m = evaluate_meshes(pred, gt, num_surface=5000, num_volume=100_000)
    assert m["fscore_1pct"] == 1.0 and m["fscore_05pct"] == 0.0
    assert m["iou"] == pytest.approx(1 / 1.007**3, abs=0.003)  # GT lies inside its scaled copy


def test_fscore_and_normal_consistency_against_naive_loops(rng):
    d_ab, d_ba = rng.uniform(0, 0.02, 300), rng.uniform(0, 0.02, 200)
    precision = sum(d < 0.01 for d in d_ab) / len(d_ab)
    recall = sum(d < 0.01 for d in d_ba) / len(d_ba)
    assert fscore(d_ab, d_ba, 0.01) == pytest.approx(2 * precision * recall / (precision + recall), rel=1e-12)
    a = trimesh.creation.icosphere(subdivisions=1)
    b = trimesh.creation.box(extents=(1.6, 1.6, 1.6))
    pa, na = surface_samples(a, 150, 0)
    pb, nb = surface_samples(b, 150, 1)
    _, f_ab = brute_force_distance(pa, b)
    _, f_ba = brute_force_distance(pb, a)
    naive = (np.mean([abs(n @ b.face_normals[f]) for n, f in zip(na, f_ab)])
             + np.mean([abs(n @ a.face_normals[f]) for n, f in zip(nb, f_ba)])) / 2
    assert normal_consistency(na, f_ab, b, nb, f_ba, a) == pytest.approx(naive, abs=1e-12)
    # With the fast closest faces the value differs only where a sample is equally close to two faces.
    fast = normal_consistency(na, distance_to_surface(pa, b)[1], b, nb, distance_to_surface(pb, a)[1], a)
    assert fast == pytest.approx(naive, abs=0.01)


def test_iou_against_a_convex_half_space_test(rng):
    gt = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    pred = trimesh.creation.box(extents=(1.2, 1.2, 1.2)).apply_translation([0.3, 0, 0])
    points = volume_samples(gt, 20_000, seed=3)

    def convex_inside(mesh):  # inside every face plane of a convex mesh
        v0 = mesh.vertices[mesh.faces[:, 0]]
        return np.all(np.einsum("fj,pfj->pf", mesh.face_normals, points[:, None, :] - v0[None]) <= 0, axis=1)

    reference = np.count_nonzero(convex_inside(gt) & convex_inside(pred)) / np.count_nonzero(convex_inside(gt) | convex_inside(pred))
    assert volumetric_iou(pred, gt, num=20_000, seed=3) == pytest.approx(reference, abs=1e-3)
    assert iou_of_labels(np.zeros(5, bool), np.zeros(5, bool)) == 1.0


def test_bad_meshes_give_one_line_errors():
    good = trimesh.creation.box()
    with pytest.raises(SdfkitError, match="no faces"):
        evaluate_meshes(trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), int)), good)
    bad = good.copy()
    bad.vertices[0] = np.nan
    with pytest.raises(SdfkitError, match="NaN"):
        evaluate_meshes(good, bad)
    with pytest.raises(SdfkitError, match="positive"):
        evaluate_meshes(good, good, num_surface=0)
