"""SDF samples: exact distances, signs that survive holes and non-manifold meshes, the file format."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import trimesh

from data_prep.mesh import load_mesh, normalize_mesh
from data_prep.sampling import (
    SAMPLE_KEYS,
    SamplingConfig,
    SdfSamples,
    load_sampling_config,
    prepare_mesh,
    sample_mesh,
    sampling_preset,
)
from data_prep.sdf import signed_distance
from sdfkit.errors import SdfkitError

from helpers import DISTANCE_TOL, SIGN_BAND, WATERTIGHT_AGREEMENT, reference_winding_number

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
        assert abs(abs(sdf[i]) - reference) < DISTANCE_TOL


@pytest.mark.parametrize("name", ["val/hand.obj", "train/bunny.obj"])
def test_signs_agree_with_exact_winding_numbers_on_real_meshes(shared_meshes, name, rng):
    unit, _ = normalize_mesh(load_mesh(shared_meshes / name))
    points, sdf, _, _ = sample_mesh(unit, SMALL)
    clear = np.flatnonzero(np.abs(sdf) > SIGN_BAND)
    pick = rng.choice(clear, size=300, replace=False)
    w = reference_winding_number(np.asarray(unit.vertices), np.asarray(unit.faces), points[pick].astype(np.float64))
    assert np.mean((sdf[pick] < 0) == (w > 0.5)) >= WATERTIGHT_AGREEMENT


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


def test_near_samples_follow_the_noise_scales():
    # A large plane-like box face: the offset along the normal is the Gaussian noise itself.
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    cfg = SamplingConfig(num_points=40_000, near_fraction=1.0, noise_stds=(0.01, 0.03), noise_weights=(0.5, 0.5), num_surface=10)
    points, sdf, _, _ = sample_mesh(box, cfg)
    offsets = np.abs(np.abs(points).max(axis=1) - 0.5)  # distance to the nearest face plane, far from edges
    interior = np.sort(np.abs(points), axis=1)[:, 1] < 0.35
    # A 50/50 mix of N(0, 0.01) and N(0, 0.03): E|x| = sqrt(2/pi) * (0.01 + 0.03) / 2.
    assert np.mean(offsets[interior]) == pytest.approx(np.sqrt(2 / np.pi) * 0.02, rel=0.05)
    np.testing.assert_allclose(np.abs(sdf[interior]), offsets[interior], atol=1e-6)


def test_uniform_half_fills_sphere_or_padded_bbox(sphere_mesh_file):
    unit, _ = normalize_mesh(load_mesh(sphere_mesh_file))
    cfg = SamplingConfig(num_points=20_000, near_fraction=0.0, num_surface=10)
    sphere_points, _, _, _ = sample_mesh(unit, cfg)
    radius = np.linalg.norm(sphere_points, axis=1)
    assert radius.max() <= 1.0 + 1e-6
    assert np.mean(radius < 0.5) == pytest.approx(0.125, abs=0.01)  # uniform in volume: (1/2)^3
    box_points, _, _, _ = sample_mesh(unit, dataclasses.replace(cfg, volume="bbox", bbox_padding=0.1))
    lo, hi = unit.bounds
    assert (box_points >= lo - 0.1 - 1e-6).all() and (box_points <= hi + 0.1 + 1e-6).all()
    assert box_points.min(axis=0) == pytest.approx(lo - 0.1, abs=0.01)


def test_surface_samples_lie_on_the_surface_with_face_normals(sphere_mesh_file):
    unit, _ = normalize_mesh(load_mesh(sphere_mesh_file))
    _, _, surface, normals = sample_mesh(unit, SamplingConfig(num_points=100, num_surface=3_000))
    assert surface.shape == normals.shape == (3_000, 3) and surface.dtype == normals.dtype == np.float32
    _, distance, face = trimesh.proximity.closest_point(unit, surface)
    assert distance.max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    assert np.mean(np.einsum("ij,ij->i", normals, unit.face_normals[face]) > 0.999) > 0.99  # ties on shared edges


def test_config_validation_and_yaml(tmp_path):
    for bad in (dict(method="fast"), dict(volume="cube"), dict(num_points=1), dict(near_fraction=1.5),
                dict(noise_stds=(0.1,), noise_weights=(0.5, 0.5)), dict(radius=0.0)):
        with pytest.raises(SdfkitError):
            SamplingConfig(**bad)
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text("preset: deepsdf\nnum_surface: 123\nnoise_weights: [0.7, 0.3]\n")
    cfg = load_sampling_config(yaml_path)
    assert cfg.num_surface == 123 and cfg.noise_weights == (0.7, 0.3) and cfg.noise_stds == sampling_preset("deepsdf").noise_stds
    assert load_sampling_config(yaml_path, "mesh-to-sdf").noise_stds == (0.0025, 0.00025)  # the caller's preset wins
    yaml_path.write_text("num_point: 5\n")
    with pytest.raises(SdfkitError, match="unknown config key 'num_point'"):
        load_sampling_config(yaml_path)


def test_default_preset_scales():
    cfg = sampling_preset("default")
    assert cfg.num_points == 500_000 and cfg.near_fraction == 0.5 and cfg.num_surface == 100_000
    assert dict(zip(cfg.noise_stds, cfg.noise_weights)) == {0.01: 0.4, 0.002: 0.4, 0.05: 0.2}


def test_samples_file_keys_dtypes_and_validation(sphere_mesh_file, tmp_path):
    samples = prepare_mesh(sphere_mesh_file, SMALL)
    path = tmp_path / "s.npz"
    samples.save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    assert set(arrays) == set(SAMPLE_KEYS)
    assert arrays["points"].dtype == np.float32 and arrays["center"].dtype == np.float64 and arrays["scale"].shape == ()
    assert int(arrays["format_version"]) == 1 and json.loads(str(arrays["settings"]))["method"] == "exact"
    assert str(arrays["source"]) == str(sphere_mesh_file.resolve())
    for change, message in ((dict(sdf=np.full(len(arrays["sdf"]), np.nan, np.float32)), "NaN"),
                            (dict(points=arrays["points"][:10]), "inconsistent shapes"),
                            (dict(points=arrays["points"].astype(np.int32)), "dtype"),
                            (dict(format_version=np.int64(7)), "format version")):
        bad = tmp_path / "bad.npz"
        np.savez(bad, **{**arrays, **change})
        with pytest.raises(SdfkitError, match=message):
            SdfSamples.load(bad)
    with pytest.raises(SdfkitError, match="not found"):
        SdfSamples.load(tmp_path / "none.npz")


def test_samples_map_back_to_the_input_frame(sphere_mesh_file):
    samples = prepare_mesh(sphere_mesh_file, SMALL)
    original = load_mesh(sphere_mesh_file)
    pts = samples.points[:500]
    # SDF scales with the transform: d_input = d_unit * scale.
    direct = signed_distance(original.vertices, original.faces, samples.normalization.from_unit(pts))
    np.testing.assert_allclose(samples.sdf[:500] * samples.normalization.scale, direct, atol=1e-6)


@pytest.mark.slow  # mesh-to-sdf renders 100 views: ~20 s
def test_mesh_to_sdf_method_runs_headless(shared_meshes):
    unit, _ = normalize_mesh(load_mesh(shared_meshes / "val" / "torus.obj"))
    cfg = SamplingConfig(num_points=2_000, num_surface=10, method="mesh-to-sdf")
    points, sdf, _, _ = sample_mesh(unit, cfg)
    exact = signed_distance(unit.vertices, unit.faces, points)
    clear = np.abs(exact) > 0.01
    assert np.mean((sdf[clear] < 0) == (exact[clear] < 0)) > 0.95  # its scan-based signs are approximate
    assert np.median(np.abs(np.abs(sdf) - np.abs(exact))) < 0.01
