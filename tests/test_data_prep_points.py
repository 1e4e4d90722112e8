"""Point clouds: readers per format, validation, normals, signs against exact winding numbers, and a fit end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from scipy.spatial import KDTree

from data_prep.mesh import load_mesh, normalize_mesh
from data_prep.points import (
    FACING_MIN_COS,
    MIN_POINTS,
    SATURATED_SPREAD,
    UNSHRINK_MAX_HS,
    PointCloud,
    PointsConfig,
    denoise_neighbours,
    is_point_cloud,
    jet_fit,
    jet_project,
    nearest_points,
    neighbour_distances,
    neighbour_planes,
    orient_cloud,
    prepare_points,
    quadric_normal_equations,
    read_points,
    sample_cloud,
    signed_distance,
    thin_cloud,
    thin_dense_noise,
    thinning_order,
    unshrink,
    voxel_average,
    voxel_means,
    widest_spread,
    winding_number,
)
from data_prep.sampling import SamplingConfig, sample_surface
from data_prep.sdf import winding_number as mesh_winding_number
from sdfkit.errors import SdfkitError


@pytest.fixture(scope="module")
def penguin(shared_meshes):
    """The penguin in the unit frame, and 20,000 points on it with their faces' normals."""
    mesh, _ = normalize_mesh(load_mesh(shared_meshes / "val" / "penguin.obj"))
    points, normals = sample_surface(mesh, 20_000, np.random.default_rng(0))
    return mesh, points, normals


def sphere_cloud(count: int = 500) -> tuple[np.ndarray, np.ndarray]:
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    points, normals = sample_surface(mesh, count, np.random.default_rng(1))
    return points + [1.0, 2.0, 3.0], normals


# ----------------------------------------------------------------------------------------------- readers


def _ply(path: Path, points: np.ndarray, normals: np.ndarray | None) -> Path:
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals is not None else [])
    data = points if normals is None else np.hstack([points, normals])
    header = ["ply", "format ascii 1.0", f"element vertex {len(points)}"] + [f"property double {n}" for n in names]
    lines = header + ["end_header"] + [" ".join(repr(v) for v in row) for row in data.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _writers(points: np.ndarray, normals: np.ndarray):
    both = np.hstack([points, normals])
    return {
        "ply": lambda p: _ply(p.with_suffix(".ply"), points, None),
        "ply-normals": lambda p: _ply(p.with_suffix(".ply"), points, normals),
        "binary-ply-normals": lambda p: _binary_ply(p.with_suffix(".ply"), points, normals),
        "xyz": lambda p: (np.savetxt(p.with_suffix(".xyz"), points, fmt="%.17g"), p.with_suffix(".xyz"))[1],
        "xyz-normals": lambda p: (np.savetxt(p.with_suffix(".xyz"), both, fmt="%.17g"), p.with_suffix(".xyz"))[1],
        "pts-count-line": lambda p: (np.savetxt(p.with_suffix(".pts"), points, fmt="%.17g", header=str(len(points)),
                                                comments=""), p.with_suffix(".pts"))[1],
        "txt-normals-comments": lambda p: (np.savetxt(p.with_suffix(".txt"), both, fmt="%.17g", header="x y z nx ny nz"),
                                   p.with_suffix(".txt"))[1],
        "npy": lambda p: (np.save(p.with_suffix(".npy"), points.astype(np.float32)), p.with_suffix(".npy"))[1],
        "npy-normals": lambda p: (np.save(p.with_suffix(".npy"), both), p.with_suffix(".npy"))[1],
        "npz-normals": lambda p: (np.savez(p.with_suffix(".npz"), points=points, normals=normals),
                                  p.with_suffix(".npz"))[1],
    }


def _binary_ply(path: Path, points: np.ndarray, normals: np.ndarray) -> Path:
    names = ["x", "y", "z", "nx", "ny", "nz"]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}"]
    header += [f"property float {n}" for n in names] + ["end_header"]
    body = np.hstack([points, normals]).astype("<f4").tobytes()
    path.write_bytes(("\n".join(header) + "\n").encode() + body)
    return path


@pytest.mark.parametrize("kind", list(_writers(np.zeros((1, 3)), np.zeros((1, 3)))))
def test_each_format_reads_the_points_and_their_normals(kind: str, tmp_path: Path):
    points, normals = sphere_cloud()
    path = _writers(points, normals)[kind](tmp_path / "cloud")
    assert is_point_cloud(path)
    cloud = read_points(path)
    tol = 1e-6 if kind.startswith(("npy", "binary")) else 1e-12
    np.testing.assert_allclose(cloud.points, points, atol=tol)
    if "normals" in kind:
        assert cloud.normals is not None
        np.testing.assert_allclose(cloud.normals, normals, atol=1e-6)
    else:
        assert cloud.normals is None


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_and_laz_read_their_points(suffix: str, tmp_path: Path):
    laspy = pytest.importorskip("laspy")
    points, _ = sphere_cloud()
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales, header.offsets = [1e-5] * 3, [0.0] * 3
    data = laspy.LasData(header)
    data.x, data.y, data.z = points.T
    data.write(tmp_path / f"cloud{suffix}")
    assert is_point_cloud(tmp_path / f"cloud{suffix}")
    cloud = read_points(tmp_path / f"cloud{suffix}")
    np.testing.assert_allclose(cloud.points, points, atol=1e-5)  # LAS stores integers of 1e-5 here
    assert cloud.normals is None


def test_without_laspy_a_las_file_is_one_line(tmp_path: Path):
    import subprocess
    import sys

    (tmp_path / "scan.las").write_bytes(b"LASF" + bytes(300))
    # A None entry in sys.modules makes the import fail, as in an installation without the extra.
    code = ("import sys; sys.modules['laspy'] = None\n"
            "from data_prep.points import read_points\n"
            f"read_points({str(tmp_path / 'scan.las')!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "files need laspy (pip install 'sdfkit[las]')" in done.stderr


def test_a_damaged_las_file_is_refused_in_one_line(tmp_path: Path):
    pytest.importorskip("laspy")
    (tmp_path / "scan.las").write_bytes(b"LASF" + bytes(300))
    with pytest.raises(SdfkitError, match="not a valid LAS/LAZ file"):
        read_points(tmp_path / "scan.las")


def test_a_ply_with_faces_is_a_mesh_and_one_without_is_a_cloud(tmp_path: Path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    mesh.export(tmp_path / "mesh.ply")
    trimesh.PointCloud(mesh.vertices).export(tmp_path / "cloud.ply")
    assert not is_point_cloud(tmp_path / "mesh.ply")
    assert is_point_cloud(tmp_path / "cloud.ply")
    assert not is_point_cloud(tmp_path / "mesh.obj")


def test_samples_npz_is_not_taken_for_a_cloud(tmp_path: Path):
    np.savez(tmp_path / "samples.npz", points=np.zeros((200, 3)), sdf=np.zeros(200))
    with pytest.raises(SdfkitError, match="holds SDF samples"):
        read_points(tmp_path / "samples.npz")


def _bad(points) -> np.ndarray:
    return np.asarray(points, dtype=np.float64)


@pytest.mark.parametrize("points,message", [
    (np.zeros((0, 3)), "holds no points"),
    (np.vstack([sphere_cloud()[0], [np.nan, 0, 0]]), "NaN or infinite"),
    (np.ones((500, 3)), "all points coincide"),
    (np.c_[np.random.default_rng(0).random((500, 2)), np.full(500, 3.0)], "is flat"),
    (np.eye(3), "only 3 points"),
], ids=["empty", "nan", "all-equal", "plane", "three"])
def test_clouds_without_a_solid_are_refused_in_one_line(points, message, tmp_path: Path):
    path = tmp_path / "bad.xyz"
    path.write_text("".join(" ".join(repr(v) for v in row) + "\n" for row in _bad(points).tolist()) or "# empty\n")
    with pytest.raises(SdfkitError, match=message) as info:
        read_points(path)
    assert "\n" not in str(info.value)


def test_a_cloud_above_the_limit_is_refused_before_it_is_read(tmp_path: Path):
    from data_prep.points import MAX_POINTS

    path = tmp_path / "huge.npy"
    count = MAX_POINTS * 5
    with open(path, "wb") as fh:  # a sparse file: the header and a hole, no data written
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (count, 3)})
        fh.truncate(fh.tell() + count * 12)
    with pytest.raises(SdfkitError, match="more than the limit"):
        read_points(path)


def test_min_points_is_enforced(tmp_path: Path):
    points, _ = sphere_cloud(MIN_POINTS - 1)
    np.save(tmp_path / "few.npy", points)
    with pytest.raises(SdfkitError, match=f"at least {MIN_POINTS}"):
        read_points(tmp_path / "few.npy")


# ------------------------------------------------------------------------------------------ signs, normals


def _sign_agreement(cloud, mesh, rng) -> float:
    queries = np.concatenate([rng.uniform(-1, 1, (20_000, 3)),
                              sample_surface(mesh, 20_000, rng)[0] + rng.normal(size=(20_000, 3)) * 0.02])
    sdf, _, _ = signed_distance(cloud, queries)
    truth = np.abs(mesh_winding_number(mesh.vertices, mesh.faces, queries)) > 0.5
    return float(np.mean((sdf < 0) == truth))


def test_signs_from_given_normals_match_the_meshs_winding_numbers(penguin):
    mesh, points, normals = penguin
    cloud = orient_cloud(PointCloud(points, normals), PointsConfig(normals="given"))
    assert _sign_agreement(cloud, mesh, np.random.default_rng(2)) >= 0.995


def test_a_large_clouds_signs_from_a_subsample_and_the_tangent_planes_next_to_it(penguin):
    """A cloud above ``winding_points`` signs as the whole cloud does: the subsample's winding number alone misses
    next to the surface, and the nearest point's tangent plane takes over there."""
    mesh, points, normals = penguin
    whole = orient_cloud(PointCloud(points, normals), PointsConfig(normals="given", tangent_reach=0.0))
    sub = orient_cloud(PointCloud(points, normals), PointsConfig(normals="given", winding_points=2000,
                                                                 tangent_reach=0.0))
    assert whole.winding is not None and whole.winding.near == 0 and len(whole.winding.points) == len(whole.points)
    assert sub.winding is not None and len(sub.winding.points) == 2000 and sub.winding.near > 0
    rng = np.random.default_rng(5)
    queries = np.concatenate([rng.uniform(-1, 1, (10_000, 3)),
                              sample_surface(mesh, 20_000, rng)[0] + rng.normal(size=(20_000, 3)) * 0.01])
    truth = np.abs(mesh_winding_number(mesh.vertices, mesh.faces, queries)) > 0.5
    agree = {}
    for name, cloud in (("whole", whole), ("sub", sub)):
        sdf, winding, _ = signed_distance(cloud, queries, winding_at=np.ones(len(queries), dtype=bool))
        agree[name], agree[f"{name} winding alone"] = np.mean((sdf < 0) == truth), np.mean((winding > 0.5) == truth)
    assert agree["sub winding alone"] < agree["whole"] - 0.01, agree  # the coarse sum alone misses next to the surface
    assert agree["sub"] >= agree["whole"] - 0.002 and agree["sub"] >= 0.99, agree


def test_far_queries_take_the_coarse_subsamples_winding_number_and_the_same_sign(penguin):
    """Beyond the coarse reach the subsample's winding number serves (its own kernel call), nearer the whole
    cloud's; the signs agree with one call over the whole cloud."""
    mesh, points, normals = penguin
    cloud = orient_cloud(PointCloud(points, normals), PointsConfig(normals="given", coarse_winding_points=2000))
    plain = orient_cloud(PointCloud(points, normals), PointsConfig(normals="given", coarse_winding_points=0))
    winding = cloud.signs
    assert plain.signs.coarse is None and winding.coarse is not None and len(winding.coarse.points) == 2000
    rng = np.random.default_rng(6)
    queries = np.concatenate([rng.uniform(-1, 1, (10_000, 3)),
                              sample_surface(mesh, 10_000, rng)[0] + rng.normal(size=(10_000, 3)) * 0.02])
    dist, _ = nearest_points(cloud.points, queries)
    far = dist > winding.beyond
    assert 0.2 < far.mean() < 0.8  # both levels serve
    two_level = winding.winding(queries, dist)
    coarse = winding_number(winding.coarse.points, winding.coarse.normals, winding.coarse.areas, queries)
    whole = winding_number(cloud.points, cloud.normals, cloud.areas, queries)
    np.testing.assert_array_equal(two_level[far], coarse[far])
    np.testing.assert_array_equal(two_level[~far], whole[~far])
    assert np.mean((two_level > 0.5) == (whole > 0.5)) >= 0.9999
    sdf, _, _ = signed_distance(cloud, queries)
    np.testing.assert_array_equal(sdf < 0, two_level > 0.5)


def test_estimated_normals_are_oriented_outwards_and_sign_like_the_mesh(penguin):
    mesh, points, normals = penguin
    cloud = orient_cloud(PointCloud(points), PointsConfig(outlier_std=0.0))
    assert cloud.normals_source == "estimated"
    # The penguin's flippers are thin walls: propagation across them flips whole regions unless steps that
    # leave the tangent planes cost more (93% right without that term).
    assert np.mean(np.einsum("ij,ij->i", cloud.normals, normals) > 0) >= 0.99
    assert _sign_agreement(cloud, mesh, np.random.default_rng(3)) >= 0.99


def test_distances_are_close_to_the_meshs_near_the_surface(penguin):
    from data_prep.sdf import unsigned_distance

    mesh, points, normals = penguin
    cloud = orient_cloud(PointCloud(points, normals), PointsConfig())
    rng = np.random.default_rng(4)
    queries = sample_surface(mesh, 5000, rng)[0] + rng.normal(size=(5000, 3)) * 0.002
    sdf, _, _ = signed_distance(cloud, queries)
    exact = unsigned_distance(mesh.vertices, mesh.faces, queries)
    spacing = float(np.median(cloud.radius))
    # Within a spacing of the surface the nearest point alone is off by 0.7 spacings (median); its plane is not.
    assert np.median(np.abs(np.abs(sdf) - exact)) < 0.1 * spacing


def test_nearest_points_match_a_brute_force_search():
    """Queries on the surface of a sphere's cloud and far from it (where scipy's tree was slow), against argmin."""
    rng = np.random.default_rng(7)
    points = rng.normal(size=(2000, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    queries = np.concatenate([points[:300] * 1.01, rng.uniform(-3, 3, (300, 3))])
    dist, nearest = nearest_points(points, queries)
    pairwise = np.linalg.norm(queries[:, None, :] - points[None, :, :], axis=2)
    assert dist.shape == nearest.shape == (600,)
    np.testing.assert_array_equal(nearest, pairwise.argmin(axis=1))
    np.testing.assert_allclose(dist, pairwise.min(axis=1), rtol=1e-12)



def test_neighbour_planes_match_a_per_point_svd():
    points, _ = sphere_cloud(300)
    points = points + np.random.default_rng(7).normal(size=points.shape) * 0.01
    _, _, idx = neighbour_distances(points, 8)
    centroids, normals, spread = neighbour_planes(points, idx)
    for i in range(len(points)):
        group = np.vstack([points[i], points[idx[i]]])
        center = group.mean(axis=0)
        _, sv, vt = np.linalg.svd(group - center)
        assert np.allclose(centroids[i], center)
        assert abs(abs(normals[i] @ vt[-1]) - 1.0) < 1e-8
        assert np.isclose(spread[i], sv[-1] / np.sqrt(len(group)))


def test_voxel_means_match_a_per_cell_loop():
    """Each cell's mean point, against a dictionary of cells filled point by point."""
    points = np.random.default_rng(3).uniform(-1, 1, (2000, 3))
    edge = 0.25
    cells: dict[tuple[int, ...], list[int]] = {}
    for i, point in enumerate(points):
        cells.setdefault(tuple(np.floor((point - points.min(axis=0)) / edge).astype(int)), []).append(i)
    means = voxel_means(points, edge)
    expected = np.array([points[members].mean(axis=0) for members in cells.values()])
    assert len(means) == len(cells)
    np.testing.assert_allclose(means[np.lexsort(means.T)], expected[np.lexsort(expected.T)])


def test_voxel_average_lands_near_its_target(penguin):
    _, points, _ = penguin
    for target in (2000, 8000):
        assert abs(len(voxel_average(points, target)) - target) < 0.1 * target


def test_a_cloud_denser_than_its_noise_is_thinned_and_others_are_kept(penguin, monkeypatch):
    """Noise about as wide as the widest height fields' reach: the cloud is thinned to half its points, a quarter,
    ..., until the spread no longer fills those neighbourhoods or the floor is reached. Narrower noise, or none,
    leaves every point (``orient_cloud`` asks only of a cloud it denoises)."""
    mesh, _, _ = penguin
    rng = np.random.default_rng(8)
    points, _ = sample_surface(mesh, 200_000, rng)
    wide = points + rng.normal(size=points.shape) * 0.03
    assert widest_spread(wide, KDTree(wide), 16) > SATURATED_SPREAD
    count = thin_dense_noise(wide, KDTree(wide), 16)
    assert count in (len(points) // 2, len(points) // 4, len(points) // 8, len(points) // 16)
    # Stopped at the first halving whose spread no longer fills the neighbourhoods.
    order = thinning_order(len(wide))
    kept, before = wide[np.sort(order[:count])], wide[np.sort(order[: 2 * count])]
    assert widest_spread(kept, KDTree(kept), 16) <= SATURATED_SPREAD < widest_spread(before, KDTree(before), 16)
    thinned = orient_cloud(PointCloud(wide), PointsConfig(outlier_std=0.0))
    assert thinned.denoised and thinned.thinned and abs(len(thinned.points) - count) <= 0.05 * count
    # Kept whole where half would go below the floor, though the spread fills the neighbourhoods.
    monkeypatch.setattr("data_prep.points.THINNED_FLOOR", len(points) // 2 + 1)
    assert thin_dense_noise(wide, KDTree(wide), 16) is None
    narrow = points + rng.normal(size=points.shape) * 0.005
    for dense in (narrow, points):
        assert widest_spread(dense, KDTree(dense), 16) < SATURATED_SPREAD
        assert thin_dense_noise(dense, KDTree(dense), 16) is None


def test_thinning_keeps_points_with_their_normals_and_averages_pairs_without(penguin, monkeypatch):
    """A cloud's own normals stay with their points: the oriented cloud's normals are the given ones of the points
    kept. Without normals the points are means of the first 2 count of
    the thinning order, about two to a cell."""
    _, points, normals = penguin
    monkeypatch.setattr("data_prep.points.SATURATED_SPREAD", 0.0)
    noisy = points + np.random.default_rng(8).normal(size=points.shape) * 0.005
    monkeypatch.setattr("data_prep.points.THINNED_FLOOR", len(points) // 2)
    assert thin_dense_noise(noisy, KDTree(noisy), 16) == len(points) // 2
    monkeypatch.setattr("data_prep.points.THINNED_FLOOR", len(points) // 4)
    count = thin_dense_noise(noisy, KDTree(noisy), 16)
    assert count == len(points) // 4
    order = thinning_order(len(points))
    given = orient_cloud(PointCloud(noisy, normals), PointsConfig(outlier_std=0.0))
    assert given.denoised and given.thinned and len(given.points) == count
    np.testing.assert_array_equal(given.normals, normals[np.sort(order[:count])])
    averaged, none = thin_cloud(noisy, None, count)
    assert none is None and abs(len(averaged) - count) <= 0.05 * count
    # Means, not points of the cloud; and of the first 2 count points: nearer to them than to the rest.
    pairs = noisy[np.sort(order[: 2 * count])]
    others = np.delete(noisy, order[: 2 * count], axis=0)
    assert np.median(KDTree(noisy).query(averaged)[0]) > 0
    assert np.median(KDTree(pairs).query(averaged)[0]) < np.median(KDTree(others).query(averaged)[0])


def reference_height_field(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The quadratic height field fitted, point by point, to all rows of (m, 3) ``group``: its (3,) centre, its
    (3, 3) frame (rows: two tangents, the plane normal), the rows' (m, 3) coordinates in it, and the six
    coefficients of ``c0 + c1 u + c2 v + c3 u^2 + c4 u v + c5 v^2``."""
    center = group.mean(axis=0)
    normal = np.linalg.svd(group - center)[2][-1]
    t1 = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
    t1 /= np.linalg.norm(t1)
    frame = np.stack([t1, np.cross(normal, t1), normal])
    u, v, h = ((group - center) @ frame.T).T
    coef = np.linalg.lstsq(np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1), h, rcond=None)[0]
    return center, frame, np.column_stack([u, v, h]), coef


def reference_jet(group: np.ndarray) -> np.ndarray:
    """(3,) the first row of (m, 3) ``group`` on the quadratic height field fitted, point by point, to all rows."""
    center, frame, local, coef = reference_height_field(group)
    u, v = local[0, :2]
    return center + np.array([u, v, coef @ [1.0, u, v, u * u, u * v, v * v]]) @ frame


def test_quadric_normal_equations_match_the_terms_table():
    rng = np.random.default_rng(3)
    u, v, h = (rng.normal(size=(40, 17)) for _ in range(3))
    weight = (rng.random((40, 17)) > 0.2).astype(np.float64)
    gram, rhs = quadric_normal_equations(u, v, h, weight)
    terms = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)  # (b, k, 6), the reference
    np.testing.assert_allclose(gram, np.einsum("bk,bki,bkj->bij", weight, terms, terms), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rhs, np.einsum("bk,bki,bk->bi", weight, terms, h), rtol=1e-12, atol=1e-12)


def test_jet_projection_matches_a_per_point_least_squares_fit():
    """The projected points, and the planes of the fits' frames (a noisy cloud's normals): each the point's own
    least-squares fit over it and its nearest others."""
    points, _ = sphere_cloud(300)
    points = points + np.random.default_rng(11).normal(size=points.shape) * 0.01
    tree, _, idx = neighbour_distances(points, 12)
    projected, planes = jet_fit(points, tree, 12)
    np.testing.assert_array_equal(jet_project(points, tree, 12), projected)
    for i in range(len(points)):
        group = np.vstack([points[i], points[idx[i]]])
        np.testing.assert_allclose(projected[i], reference_jet(group), atol=1e-9)
        assert abs(abs(planes[i] @ reference_height_field(group)[1][2]) - 1.0) < 1e-8


def test_jet_projection_with_normals_matches_a_fit_over_the_neighbours_facing_alike():
    points, normals = sphere_cloud(300)
    points = points + np.random.default_rng(12).normal(size=points.shape) * 0.01
    normals = normals.copy()
    normals[::7] *= -1.0  # some neighbours face away and must take no part
    tree, _, idx = neighbour_distances(points, 24)
    projected = jet_project(points, tree, 24, normals)
    for i in range(len(points)):
        facing = [j for j in idx[i] if normals[j] @ normals[i] > FACING_MIN_COS]
        np.testing.assert_allclose(projected[i], reference_jet(np.vstack([points[i], points[facing]])), atol=1e-8)


def test_a_thin_slab_keeps_its_two_sides_apart_when_the_normals_are_given():
    # Two noisy sheets 0.02 apart, the neighbourhoods wider than the gap: without normals each point's fit runs
    # through both sheets and draws it to the middle; with them, each sheet is fitted alone.
    rng = np.random.default_rng(13)
    uv = rng.uniform(-1.0, 1.0, size=(4000, 2))
    side = np.where(np.arange(4000) % 2 == 0, 1.0, -1.0)
    points = np.column_stack([uv, 0.01 * side + rng.normal(size=4000) * 0.002])
    normals = np.column_stack([np.zeros((4000, 2)), side])
    tree = neighbour_distances(points, 16)[0]
    blind = jet_project(points, tree, 64)
    facing = jet_project(points, tree, 64, normals)
    assert np.median(np.abs(blind[:, 2])) < 0.005
    assert np.median(np.abs(facing[:, 2] - 0.01 * side)) < 0.001


def test_unshrink_matches_a_per_point_reference():
    points, normals = sphere_cloud(300)
    noisy = points + np.random.default_rng(14).normal(size=points.shape) * 0.02
    projected = jet_project(noisy, neighbour_distances(noisy, 24)[0], 24)
    moved = unshrink(noisy, projected, 24, normals, facing=False)
    idx = neighbour_distances(projected, 24)[2]
    side, bend = np.empty((300, 3)), np.empty(300)
    for i in range(300):
        _, frame, _, coef = reference_height_field(np.vstack([projected[i], projected[idx[i]]]))
        sign = 1.0 if frame[2] @ normals[i] >= 0 else -1.0
        side[i], bend[i] = frame[2] * sign, (coef[3] + coef[5]) * sign
    sigma = 1.4826 * np.median(np.abs(np.einsum("ij,ij->i", noisy - projected, side)))
    for i in range(300):
        shift = np.clip(-np.mean(bend[np.concatenate([[i], idx[i]])]) * sigma**2, -UNSHRINK_MAX_HS * sigma,
                        UNSHRINK_MAX_HS * sigma)
        np.testing.assert_allclose(moved[i], projected[i] + shift * side[i], atol=1e-9)


def test_unshrink_gives_back_the_radius_the_fit_took_from_a_noisy_sphere():
    # Noise of 0.03 on a unit sphere: the height-field fit lies 2.0e-3 inside (measured), of which the shift, s^2 H
    # = 9e-4, takes back 1.1e-3 (the rest grows with the neighbourhood). On a plane, with no curvature, it moves
    # the points by no more than noise, as far out as in (measured: a mean of -1.6e-5 away from the edges).
    rng = np.random.default_rng(15)
    directions = rng.normal(size=(40_000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    noisy = directions + rng.normal(size=directions.shape) * 0.03
    projected = jet_project(noisy, neighbour_distances(noisy, 16)[0], 128)
    moved = unshrink(noisy, projected, 128, directions, facing=False)
    before = np.mean(np.linalg.norm(projected, axis=1)) - 1.0
    after = np.mean(np.linalg.norm(moved, axis=1)) - 1.0
    assert before < -5e-4
    assert abs(after) < 0.6 * abs(before)
    plane = np.column_stack([rng.uniform(-1, 1, (20_000, 2)), rng.normal(size=20_000) * 0.03])
    up = np.tile([0.0, 0.0, 1.0], (20_000, 1))
    flat = jet_project(plane, neighbour_distances(plane, 16)[0], 128)
    shift = (unshrink(plane, flat, 128, up, facing=False) - flat)[:, 2]
    inner = np.all(np.abs(plane[:, :2]) < 0.8, axis=1)
    assert abs(shift[inner].mean()) < 0.05 * (after - before)


def test_a_noisy_cloud_with_normals_is_denoised_without_shrinking():
    rng = np.random.default_rng(16)
    directions = rng.normal(size=(20_000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    noisy = directions + rng.normal(size=directions.shape) * 0.03
    cloud = orient_cloud(PointCloud(noisy, directions), PointsConfig(outlier_std=0.0))
    tree, _, idx = neighbour_distances(noisy, 16)
    count = 2 * denoise_neighbours(tree, noisy, neighbour_planes(noisy, idx)[2], 16)
    shrunk = np.mean(np.linalg.norm(jet_project(noisy, tree, count, directions), axis=1)) - 1.0
    assert cloud.denoised and shrunk < -5e-4
    assert abs(np.mean(np.linalg.norm(cloud.points, axis=1)) - 1.0) < 0.6 * abs(shrunk)


@pytest.mark.parametrize("settings, fragment", [
    ({"tangent_reach": -1.0}, "tangent_reach"), ({"neighbours": 2}, "neighbours"), ({"denoise": "maybe"}, "denoise"),
    ({"winding_points": 10}, "winding_points"), ({"normals": "some"}, "--normals"),
    ({"coarse_winding_points": 50}, "coarse_winding_points"),
])
def test_bad_points_settings_are_one_line(settings, fragment):
    with pytest.raises(SdfkitError, match=fragment):
        PointsConfig(**settings)


def test_a_clean_cloud_signs_next_to_it_by_tangent_planes_a_denoised_one_by_the_winding_number(penguin):
    """Within ``tangent_reach`` disc radii of a clean cloud the tangent plane gives the sign, and the winding number
    is not computed there; the samples' sign-trust check still has winding numbers on an even share of them."""
    mesh, points, normals = penguin
    default = orient_cloud(PointCloud(points, normals), PointsConfig(normals="given"))
    assert default.winding is not None and default.winding.near == 0  # off by default
    clean = orient_cloud(PointCloud(points, normals), PointsConfig(normals="given", tangent_reach=2.0))
    radius = float(np.sqrt(np.median(clean.areas) / np.pi))
    assert clean.winding is not None and clean.winding.near == pytest.approx(2.0 * radius)
    noisy = points + np.random.default_rng(8).normal(size=points.shape) * 0.005
    denoised = orient_cloud(PointCloud(noisy, normals), PointsConfig(normals="given", tangent_reach=2.0))
    assert denoised.denoised and denoised.winding is not None and denoised.winding.near == 0
    rng = np.random.default_rng(11)
    queries = sample_surface(mesh, 4000, rng)[0] + rng.normal(size=(4000, 3)) * 0.002
    sdf, winding, side = signed_distance(clean, queries)
    close = nearest_points(clean.points, queries)[0] <= clean.winding.near
    assert 0.2 < close.mean() < 1 and np.isnan(winding[close]).all() and not np.isnan(winding[~close]).any()
    np.testing.assert_array_equal(np.sign(sdf[close]), side[close])  # the tangent plane's side
    _, everywhere, _ = signed_distance(clean, queries, winding_at=np.ones(len(queries), dtype=bool))
    assert not np.isnan(everywhere).any() and np.array_equal(everywhere[~close], winding[~close])
    config = SamplingConfig(num_points=20_000, num_surface=2_000)
    *_, trust = sample_cloud(clean, config, PointsConfig(normals="given", tangent_reach=2.0))
    assert 0 <= trust["ambiguous"] < 0.15 and 0 <= trust["normal_disagreement"] < 0.05
    # Fewer samples than the check's share: every one is checked, so the figures are the winding number's own.
    *_, everywhere_trust = sample_cloud(default, config, PointsConfig(normals="given"))
    assert trust == everywhere_trust


def test_noisy_points_are_denoised_and_clean_ones_kept(penguin):
    from data_prep.sdf import unsigned_distance

    mesh, points, normals = penguin
    clean = orient_cloud(PointCloud(points, normals), PointsConfig(outlier_std=0.0))
    assert not clean.denoised and np.array_equal(clean.points, points)
    noisy = points + np.random.default_rng(8).normal(size=points.shape) * 0.005
    cloud = orient_cloud(PointCloud(noisy, normals), PointsConfig(outlier_std=0.0))
    assert cloud.denoised and cloud.noise > 2 * clean.noise
    before = np.median(unsigned_distance(mesh.vertices, mesh.faces, noisy))
    after = np.median(unsigned_distance(mesh.vertices, mesh.faces, cloud.points))
    # Measured: the median distance to the surface falls from 0.0033 to 0.0014.
    assert after < 0.5 * before


def test_denoising_makes_estimated_signs_agree_with_the_mesh_under_noise(penguin):
    mesh, points, _ = penguin
    noisy = PointCloud(points + np.random.default_rng(9).normal(size=points.shape) * 0.005)
    cloud = orient_cloud(noisy, PointsConfig(outlier_std=0.0))
    kept = orient_cloud(noisy, PointsConfig(outlier_std=0.0, denoise="off"))
    assert cloud.denoised and not kept.denoised
    # Measured: 0.976 of the signs right on the denoised points, 0.950 on the noisy ones (orientation flips
    # more regions when the normals scatter).
    agreement = _sign_agreement(cloud, mesh, np.random.default_rng(10))
    assert agreement >= 0.97 and agreement > _sign_agreement(kept, mesh, np.random.default_rng(10)) + 0.01


def test_a_cloud_without_normals_under_noise_of_1_percent_is_oriented_and_signs_like_the_mesh(shared_meshes):
    """Noise of 1% of the diagonal on 50,000 penguin points, no normals: over k = 16 neighbours the noise sets the
    planes and propagation orients about half the normals right (measured: 0.50, signs 0.74); the denoising
    neighbourhoods' planes orient 0.88 of them (signs 0.92)."""
    mesh, _ = normalize_mesh(load_mesh(shared_meshes / "val" / "penguin.obj"))
    points, normals = sample_surface(mesh, 50_000, np.random.default_rng(0))
    diagonal = np.linalg.norm(mesh.bounds[1] - mesh.bounds[0])
    noisy = points + np.random.default_rng(11).normal(size=points.shape) * 0.01 * diagonal
    cloud = orient_cloud(PointCloud(noisy), PointsConfig(outlier_std=0.0))
    assert cloud.denoised and cloud.normals_source == "estimated"
    assert np.mean(np.einsum("ij,ij->i", cloud.normals, normals) > 0) >= 0.85
    assert _sign_agreement(cloud, mesh, np.random.default_rng(12)) >= 0.9


def test_noise_outliers_and_a_hole_give_finite_samples_and_say_what_was_done(penguin, tmp_path: Path):
    mesh, points, normals = penguin
    rng = np.random.default_rng(5)
    keep = points[:, 2] < np.quantile(points[:, 2], 0.85)  # the top cap cut away
    noisy = points[keep] + rng.normal(size=(int(keep.sum()), 3)) * 0.01
    outliers = rng.uniform(-1, 1, (200, 3))
    np.save(tmp_path / "scan.npy", np.vstack([noisy, outliers]))
    config = SamplingConfig(num_points=20_000, num_surface=2_000)
    samples, info, _ = prepare_points(tmp_path / "scan.npy", config)
    assert np.isfinite(samples.sdf).all() and len(samples.points) == 20_000
    assert info["outliers_removed"] >= 100
    assert info["normals"] == "estimated" and "closed" in info["gaps"]
    assert set(info["sign_trust"]) == {"ambiguous", "normal_disagreement"}


# ---------------------------------------------------------------------------------------------- end to end


def test_a_small_scan_fits_end_to_end(shared_meshes, tmp_path: Path):
    """5,000 points without normals from a real mesh, through ``sdfkit fit`` (shipped decoder and encoder, few
    steps)."""
    from sdfkit.decoder_io import load_decoder
    from sdfkit.metrics import evaluate_meshes

    from corpus import run_cli

    source = load_mesh(shared_meshes / "val" / "torus.obj")
    points, _ = sample_surface(source, 5000, np.random.default_rng(6))
    np.savetxt(tmp_path / "scan.xyz", points)
    _, cfg, _ = load_decoder(None)
    settings = dataclasses.asdict(cfg)
    settings["sampling"]["num_points"] = 60_000  # fewer samples than a mesh's default keep the test short
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "fit"
    code, _, err = run_cli("fit", str(tmp_path / "scan.xyz"), "--out", str(out), "--config", str(config),
                           "--steps", "20", "--resolution", "48", "--no-preview", "--quiet")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["point_cloud"]["normals"] == "estimated"
    # Samples within a point spacing of a sparse cloud have winding numbers near 1/2 (7% here).
    assert report["point_cloud"]["sign_trust"]["ambiguous"] < 0.15
    assert report["metrics"]["fscore_1pct"] > 0.2
    recon = trimesh.load(out / "mesh.obj", force="mesh")
    # The encoder reads the cloud's estimated SDF: 0.985 after 20 steps (random codes need hundreds of steps).
    assert report["init"] == "encoder"
    assert evaluate_meshes(recon, source, num_surface=5000, num_volume=50_000)["iou"] >= 0.97
