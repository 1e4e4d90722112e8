"""SDF samples: exact distances, signs that survive holes and non-manifold meshes, the file format."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import trimesh

from data_prep.mesh import load_mesh, normalize_mesh
from data_prep.sampling import SamplingConfig, SdfSamples, prepare_mesh, sample_mesh, sampling_preset
from data_prep.sdf import signed_distance, winding_number
from sdfkit.errors import SdfkitError

SMALL = SamplingConfig(num_points=20_000, num_surface=2_000)


def point_triangle_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Exact distance from p to triangle abc (Ericson, Real-Time Collision Detection 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = ab @ ap, ac @ ap
    if d1 <= 0 and d2 <= 0:
        return float(np.linalg.norm(p - a))
    bp = p - b
    d3, d4 = ab @ bp, ac @ bp
    if d3 >= 0 and d4 <= d3:
        return float(np.linalg.norm(p - b))
    vc = d1 * d4 - d3 * d2
    if vc <= 0 and d1 >= 0 and d3 <= 0:
        return float(np.linalg.norm(p - (a + d1 / (d1 - d3) * ab)))
    cp = p - c
    d5, d6 = ab @ cp, ac @ cp
    if d6 >= 0 and d5 <= d6:
        return float(np.linalg.norm(p - c))
    vb = d5 * d2 - d1 * d6
    if vb <= 0 and d2 >= 0 and d6 <= 0:
        return float(np.linalg.norm(p - (a + d2 / (d2 - d6) * ac)))
    va = d3 * d6 - d5 * d4
    if va <= 0 and (d4 - d3) >= 0 and (d5 - d6) >= 0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return float(np.linalg.norm(p - (b + w * (c - b))))
    denom = 1.0 / (va + vb + vc)
    return float(np.linalg.norm(p - (a + ab * vb * denom + ac * vc * denom)))


@pytest.mark.parametrize("name", ["val/penguin.obj", "train/koala.obj"])
def test_distances_match_a_brute_force_reference(shared_meshes, name, rng):
    unit, _ = normalize_mesh(load_mesh(shared_meshes / name))
    points, sdf, _, _ = sample_mesh(unit, SMALL)
    pick = rng.choice(len(points), size=25, replace=False)
    tri = np.asarray(unit.vertices)[np.asarray(unit.faces)]
    for i in pick:
        reference = min(point_triangle_distance(points[i].astype(np.float64), *t) for t in tri)
        assert abs(abs(sdf[i]) - reference) < 1e-5


@pytest.mark.parametrize("name", ["val/hand.obj", "train/bunny.obj"])
def test_signs_agree_with_winding_numbers_on_real_meshes(shared_meshes, name):
    unit, _ = normalize_mesh(load_mesh(shared_meshes / name))
    points, sdf, _, _ = sample_mesh(unit, SMALL)
    far = np.abs(sdf) > 1e-3
    w = winding_number(unit.vertices, unit.faces, points[far])
    agree = np.mean((sdf[far] < 0) == (w > 0.5))
    assert agree >= 0.999


def sphere_truth(points: np.ndarray, radius: float) -> np.ndarray:
    return np.linalg.norm(points, axis=1) < radius


def test_signs_survive_holes():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.8)
    keep = np.ones(len(sphere.faces), dtype=bool)
    keep[np.random.default_rng(0).choice(len(keep), size=len(keep) // 20, replace=False)] = False  # 5% holes
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[keep], process=False)
    assert not holed.is_watertight
    pts = np.random.default_rng(1).uniform(-1, 1, size=(20_000, 3))
    sdf = signed_distance(holed.vertices, holed.faces, pts)
    clear = np.abs(np.linalg.norm(pts, axis=1) - 0.8) > 0.02
    assert np.mean((sdf[clear] < 0) == sphere_truth(pts[clear], 0.8)) >= 0.99


def test_signs_survive_non_manifold_and_inner_faces():
    a = trimesh.creation.box(extents=(1, 1, 1)).apply_translation([-0.5, 0, 0])
    b = trimesh.creation.box(extents=(1, 1, 1)).apply_translation([0.5, 0.0, 0.0])
    inner = trimesh.Trimesh([[0, -0.5, -0.5], [0, 0.5, -0.5], [0, 0.5, 0.5], [0, -0.5, 0.5]], [[0, 1, 2], [0, 2, 3]])
    mesh = trimesh.util.concatenate([a, b, inner])  # shared face, coincident walls, an internal sheet
    pts = np.random.default_rng(2).uniform(-1.5, 1.5, size=(20_000, 3))
    truth = (np.abs(pts[:, 0]) < 1.0) & (np.abs(pts[:, 1]) < 0.5) & (np.abs(pts[:, 2]) < 0.5)
    sdf = signed_distance(mesh.vertices, mesh.faces, pts)
    margin = np.minimum.reduce([np.abs(np.abs(pts[:, 0]) - 1.0), np.abs(np.abs(pts[:, 1]) - 0.5), np.abs(np.abs(pts[:, 2]) - 0.5)])
    clear = margin > 0.02
    assert np.mean((sdf[clear] < 0) == truth[clear]) >= 0.99


def test_sample_mix_and_reproducibility(sphere_mesh_file):
    cfg = dataclasses.replace(SMALL, noise_stds=(0.01,), noise_weights=(1.0,))
    a = prepare_mesh(sphere_mesh_file, cfg)
    b = prepare_mesh(sphere_mesh_file, cfg)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.sdf, b.sdf)
    near = np.abs(a.sdf[: len(a.sdf) // 2])
    assert np.median(near) < 0.02  # near-surface half
    assert np.linalg.norm(a.points[len(a.points) // 2 :], axis=1).max() <= 1.0 + 1e-6  # uniform half in the unit sphere
    assert (a.sdf < 0).any() and (a.sdf > 0).any()
    c = prepare_mesh(sphere_mesh_file, dataclasses.replace(cfg, seed=1))
    assert not np.array_equal(a.points, c.points)


def test_samples_file_round_trip_and_corruption(sphere_mesh_file, tmp_path):
    samples = prepare_mesh(sphere_mesh_file, SMALL)
    path = tmp_path / "s.npz"
    samples.save(path)
    back = SdfSamples.load(path)
    np.testing.assert_array_equal(back.points, samples.points)
    assert back.normalization == samples.normalization and back.mesh_hash == samples.mesh_hash
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SdfkitError, match="cannot read samples"):
        SdfSamples.load(path)
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(SdfkitError, match="not an sdfkit samples file"):
        SdfSamples.load(tmp_path / "foreign.npz")


def test_presets():
    assert sampling_preset("deepsdf").noise_stds[0] == pytest.approx(0.0707, abs=1e-3)
    assert sampling_preset("mesh-to-sdf").noise_stds == (0.0025, 0.00025)
    with pytest.raises(SdfkitError, match="unknown sampling preset"):
        sampling_preset("nope")
