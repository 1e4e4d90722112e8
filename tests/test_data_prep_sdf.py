"""Exact distances and winding-number signs (data_prep.sdf) against slow, obviously-correct references."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from data_prep.mesh import load_mesh, normalize_mesh
from data_prep.sdf import MeshSDF, inside, signed_distance, unsigned_distance, winding_number

from helpers import DISTANCE_TOL, SIGN_BAND, WATERTIGHT_AGREEMENT, reference_winding_number

#: Share of signs that must agree with the analytic inside on meshes with holes or non-manifold parts.
DEFECT_AGREEMENT = 0.99


# ---------------------------------------------------------------- references

def reference_point_triangle_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Distance from one point to one triangle: the minimum over the interior projection and the three edges."""
    normal = np.cross(b - a, c - a)
    normal = normal / np.linalg.norm(normal)
    projected = point - np.dot(point - a, normal) * normal
    # Barycentric test: the projection lies in the triangle iff the three sub-areas have the normal's sign.
    signs = [np.dot(np.cross(q - p, projected - p), normal) for p, q in ((a, b), (b, c), (c, a))]
    best = abs(float(np.dot(point - a, normal))) if min(signs) >= 0 else np.inf
    for p, q in ((a, b), (b, c), (c, a)):
        t = np.clip(np.dot(point - p, q - p) / np.dot(q - p, q - p), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(point - (p + t * (q - p)))))
    return best


def reference_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Brute force: every point against every triangle (small meshes only)."""
    tris = vertices[faces]
    return np.array([min(reference_point_triangle_distance(p, *t) for t in tris) for p in points])


# ---------------------------------------------------------------- small meshes with defects

def sphere_with_holes(subdivisions: int = 3, holes: int = 4) -> trimesh.Trimesh:
    """A unit icosphere with ``holes`` faces removed (an open scan)."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    keep = np.ones(len(mesh.faces), bool)
    keep[np.random.default_rng(1).choice(len(mesh.faces), holes, replace=False)] = False
    return trimesh.Trimesh(mesh.vertices, mesh.faces[keep], process=False)


def boxes_sharing_edge() -> trimesh.Trimesh:
    """Two unit cubes touching along one edge (a non-manifold edge): [0,1]^3 and [1,2]x[1,2]x[0,1]."""
    a = trimesh.creation.box(bounds=[[0, 0, 0], [1, 1, 1]])
    b = trimesh.creation.box(bounds=[[1, 1, 0], [2, 2, 1]])
    return trimesh.util.concatenate([a, b])


def box_with_inner_face() -> trimesh.Trimesh:
    """The cube [-1,1]^3 with an extra square at x = 0 splitting it (an inner face, as in CAD/ShapeNet)."""
    box = trimesh.creation.box(extents=[2, 2, 2])
    v0 = len(box.vertices)
    inner_v = np.array([[0, -1, -1], [0, 1, -1], [0, 1, 1], [0, -1, 1]], float)
    inner_f = np.array([[0, 1, 2], [0, 2, 3]]) + v0
    return trimesh.Trimesh(np.vstack([box.vertices, inner_v]), np.vstack([box.faces, inner_f]), process=False)


def agreement(sdf: np.ndarray, truth_inside: np.ndarray, band: np.ndarray) -> float:
    return float(((sdf < 0) == truth_inside)[band].mean())


# ---------------------------------------------------------------- tests

def test_unsigned_distance_matches_brute_force(rng):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    mesh.vertices *= [1.0, 0.6, 0.3]  # uneven so the nearest feature varies: faces, edges, vertices
    points = rng.normal(size=(150, 3))
    points[:50] *= 0.2  # some inside
    got = unsigned_distance(mesh.vertices, mesh.faces, points)
    np.testing.assert_allclose(got, reference_distance(mesh.vertices, mesh.faces, points), atol=1e-9)


def test_winding_number_matches_exact_solid_angles(rng):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    points = rng.uniform(-1.5, 1.5, size=(300, 3))
    exact = reference_winding_number(mesh.vertices, mesh.faces, points)
    fast = winding_number(mesh.vertices, mesh.faces, points)
    far_from_surface = np.abs(np.linalg.norm(points, axis=1) - 1.0) > 0.05
    np.testing.assert_allclose(fast[far_from_surface], exact[far_from_surface], atol=0.05)
    assert set(np.round(exact[far_from_surface]).astype(int)) == {0, 1}


def test_signed_distance_sign_and_orientation_independence(rng):
    mesh = trimesh.creation.icosphere(subdivisions=3)
    points = rng.uniform(-1.3, 1.3, size=(2000, 3))
    radius = np.linalg.norm(points, axis=1)
    sdf = signed_distance(mesh.vertices, mesh.faces, points)
    band = np.abs(radius - 1.0) > 0.02  # icosphere facets lie within ~0.01 of the sphere
    assert np.array_equal((sdf < 0)[band], (radius < 1.0)[band])
    flipped = signed_distance(mesh.vertices, mesh.faces[:, ::-1], points)  # inverted faces: same signs
    assert np.array_equal(np.sign(sdf), np.sign(flipped))
    np.testing.assert_allclose(sdf, flipped, atol=1e-12)
    assert np.array_equal(inside(mesh.vertices, mesh.faces, points), sdf < 0)


def test_workers_give_bit_identical_results(rng):
    mesh = trimesh.creation.torus(major_radius=0.6, minor_radius=0.2)
    points = rng.uniform(-1, 1, size=(60_000, 3))
    serial = signed_distance(mesh.vertices, mesh.faces, points)
    parallel = signed_distance(mesh.vertices, mesh.faces, points, workers=2)
    assert np.array_equal(serial, parallel)
    assert MeshSDF(mesh, workers=2)(points.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("name", ["train/koala.obj", "val/penguin.obj"])
def test_real_meshes_exact_distances_and_winding_signs(shared_meshes, name):
    unit, _ = normalize_mesh(load_mesh(shared_meshes / name))
    v, f = np.asarray(unit.vertices), np.asarray(unit.faces)
    rng = np.random.default_rng(3)
    surface, _ = trimesh.sample.sample_surface(unit, 300, seed=3)
    points = np.vstack([surface + rng.normal(size=surface.shape) * 0.01, rng.uniform(-1, 1, size=(100, 3))])
    sdf = signed_distance(v, f, points)
    _, reference, _ = trimesh.proximity.closest_point(unit, points)
    np.testing.assert_allclose(np.abs(sdf), reference, atol=DISTANCE_TOL)
    band = np.abs(sdf) > SIGN_BAND
    exact_inside = reference_winding_number(v, f, points) > 0.5
    assert agreement(sdf, exact_inside, band) >= WATERTIGHT_AGREEMENT


def test_sphere_with_holes_signs():
    mesh = sphere_with_holes()
    assert not mesh.is_watertight
    points = np.random.default_rng(4).uniform(-1.2, 1.2, size=(5000, 3))
    sdf = signed_distance(mesh.vertices, mesh.faces, points)
    radius = np.linalg.norm(points, axis=1)
    band = np.abs(radius - 1.0) > 0.02
    assert agreement(sdf, radius < 1.0, band) >= DEFECT_AGREEMENT


def test_boxes_sharing_an_edge_signs():
    mesh = boxes_sharing_edge()
    points = np.random.default_rng(5).uniform(-0.5, 2.5, size=(5000, 3))
    in_a = np.all((points > 0) & (points < 1), axis=1)
    in_b = np.all((points > [1, 1, 0]) & (points < [2, 2, 1]), axis=1)
    sdf = signed_distance(mesh.vertices, mesh.faces, points)
    assert agreement(sdf, in_a | in_b, np.abs(sdf) > SIGN_BAND) >= DEFECT_AGREEMENT


def test_box_with_inner_face_signs():
    mesh = box_with_inner_face()
    points = np.random.default_rng(6).uniform(-1.5, 1.5, size=(5000, 3))
    truth = np.all(np.abs(points) < 1.0, axis=1)
    sdf = signed_distance(mesh.vertices, mesh.faces, points)
    assert agreement(sdf, truth, np.abs(sdf) > SIGN_BAND) >= DEFECT_AGREEMENT


def test_coincident_walls_and_inner_sheet_signs():
    a = trimesh.creation.box(extents=(1, 1, 1)).apply_translation([-0.5, 0, 0])
    b = trimesh.creation.box(extents=(1, 1, 1)).apply_translation([0.5, 0.0, 0.0])
    inner = trimesh.Trimesh([[0, -0.5, -0.5], [0, 0.5, -0.5], [0, 0.5, 0.5], [0, -0.5, 0.5]], [[0, 1, 2], [0, 2, 3]])
    mesh = trimesh.util.concatenate([a, b, inner])  # a shared face, coincident walls, an internal sheet
    pts = np.random.default_rng(2).uniform(-1.5, 1.5, size=(20_000, 3))
    truth = (np.abs(pts[:, 0]) < 1.0) & (np.abs(pts[:, 1]) < 0.5) & (np.abs(pts[:, 2]) < 0.5)
    sdf = signed_distance(mesh.vertices, mesh.faces, pts)
    margin = np.minimum.reduce([np.abs(np.abs(pts[:, 0]) - 1.0), np.abs(np.abs(pts[:, 1]) - 0.5), np.abs(np.abs(pts[:, 2]) - 0.5)])
    assert agreement(sdf, truth, margin > 0.02) >= DEFECT_AGREEMENT
