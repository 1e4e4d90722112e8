"""Mesh-to-mesh metrics under one protocol (``docs/metrics.md``).

Both meshes are put in the ground truth's unit-sphere frame (the same
transform for both: ``data_prep.mesh.fit_normalization(gt)``). Surface metrics
use 30,000 area-weighted samples per surface (fixed seed) and exact
point-to-triangle distances to the *other surface*; volumetric IoU uses
1,000,000 uniform points in the ground truth's bounding box padded by 5%,
classified inside/outside by generalized winding number.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import KDTree

from data_prep.mesh import fit_normalization
from data_prep.points import cloud_normalization
from data_prep.sampling import sample_surface
from data_prep.sdf import closest_faces, inside
from sdfkit.errors import SdfkitError

#: Surface samples per mesh.
NUM_SURFACE = 30_000
#: Uniform samples for the volumetric IoU.
NUM_VOLUME = 1_000_000
SEED = 0
#: Padding of GT's bounding box for the IoU samples, as a fraction of its extent.
IOU_PADDING = 0.05
#: F-score thresholds, as fractions of the unit radius (the unit frame's radius is 1).
FSCORE_THRESHOLDS = {"fscore_1pct": 0.01, "fscore_05pct": 0.005}
#: Points per call into the closest-point kernel; bounds memory.
CHUNK = 1 << 18
#: The keys of :func:`evaluate_meshes`, in display order.
METRIC_KEYS = ("chamfer", "chamfer_points", "chamfer_l1", "hausdorff", "fscore_1pct", "fscore_05pct",
               "normal_consistency", "iou")


def _checked(mesh: trimesh.Trimesh, name: str) -> trimesh.Trimesh:
    """A copy of ``mesh`` without zero-area faces; one-line error when nothing usable is left."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0 or len(vertices) == 0:
        raise SdfkitError(f"{name} mesh has no faces")
    if not np.isfinite(vertices).all():
        raise SdfkitError(f"{name} mesh has NaN or infinite vertices")
    out = trimesh.Trimesh(vertices, faces, process=False)
    # Zero-area faces have no normal and carry no area; they only confuse the closest-face normals.
    keep = out.area_faces > 0
    if not keep.any():
        raise SdfkitError(f"{name} mesh has zero surface area")
    if not keep.all():
        out = trimesh.Trimesh(vertices, faces[keep], process=False)
    return out


def to_gt_frame(pred: trimesh.Trimesh, gt: trimesh.Trimesh) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """Both meshes mapped by GT's normalisation (bounding-box centre to 0, farthest GT vertex at radius 1)."""
    pred, gt = _checked(pred, "predicted"), _checked(gt, "ground-truth")
    norm = fit_normalization(gt)
    return (trimesh.Trimesh(norm.to_unit(pred.vertices), pred.faces, process=False),
            trimesh.Trimesh(norm.to_unit(gt.vertices), gt.faces, process=False))


def surface_samples(mesh: trimesh.Trimesh, count: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points on ``mesh`` by area and their faces' unit normals: (count, 3), (count, 3) float64."""
    return sample_surface(mesh, int(count), np.random.default_rng(seed))


def distance_to_surface(points: np.ndarray, mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance from (n, 3) ``points`` to the triangles of ``mesh``: (n,) float64, and (n,) closest face index."""
    return closest_faces(mesh.vertices, mesh.faces, points)


def chamfer_from_distances(d_ab: np.ndarray, d_ba: np.ndarray) -> float:
    """mean(d_ab^2) + mean(d_ba^2): the squared Chamfer distance from one-sided distances (n,), (m,)."""
    return float(np.mean(np.square(d_ab)) + np.mean(np.square(d_ba)))


def chamfer_to_surface(a: trimesh.Trimesh, b: trimesh.Trimesh, num: int = NUM_SURFACE, seed: int = SEED) -> float:
    """mean over A's samples of d(p, B)^2 + mean over B's samples of d(q, A)^2.

    d is the exact distance to the other *surface* (not to its samples), in the
    meshes' own frame (:func:`evaluate_meshes` first maps both to GT's unit frame).
    """
    pa, _ = surface_samples(a, num, seed)
    pb, _ = surface_samples(b, num, seed + 1)
    return chamfer_from_distances(distance_to_surface(pa, b)[0], distance_to_surface(pb, a)[0])


def chamfer_to_points(points_a: np.ndarray, points_b: np.ndarray) -> float:
    """DeepSDF-style Chamfer between point sets (n, 3) and (m, 3): mean squared nearest-sample distance, both ways."""
    d_ab, _ = KDTree(points_b).query(points_a, workers=-1)
    d_ba, _ = KDTree(points_a).query(points_b, workers=-1)
    return chamfer_from_distances(d_ab, d_ba)


def fscore(d_pred_to_gt: np.ndarray, d_gt_to_pred: np.ndarray, threshold: float) -> float:
    """Harmonic mean of precision (share of pred samples within ``threshold`` of GT) and recall (the converse)."""
    precision, recall = float(np.mean(d_pred_to_gt < threshold)), float(np.mean(d_gt_to_pred < threshold))
    return 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def normal_consistency(normals_a: np.ndarray, faces_ab: np.ndarray, b: trimesh.Trimesh,
                       normals_b: np.ndarray, faces_ba: np.ndarray, a: trimesh.Trimesh) -> float:
    """Mean |cos| between each sample's normal and that of its closest face on the other mesh, over both directions.

    normals_a : (n, 3) unit normals of A's samples; faces_ab : (n,) their closest faces on B
    (and the converse for B's samples).
    """
    cos_ab = np.abs(np.einsum("ij,ij->i", normals_a, np.asarray(b.face_normals)[faces_ab]))
    cos_ba = np.abs(np.einsum("ij,ij->i", normals_b, np.asarray(a.face_normals)[faces_ba]))
    return float((cos_ab.mean() + cos_ba.mean()) / 2.0)


def volume_samples(gt: trimesh.Trimesh, num: int = NUM_VOLUME, seed: int = SEED,
                   padding: float = IOU_PADDING) -> np.ndarray:
    """(num, 3) uniform points in GT's bounding box grown by ``padding`` x its extent on every side."""
    lo, hi = np.asarray(gt.bounds, dtype=np.float64)
    pad = padding * (hi - lo)
    return np.random.default_rng(seed).uniform(lo - pad, hi + pad, size=(int(num), 3))


def iou_of_labels(inside_a: np.ndarray, inside_b: np.ndarray) -> float:
    """|A and B| / |A or B| for (n,) boolean labels; 1 when both are empty."""
    union = np.count_nonzero(inside_a | inside_b)
    return float(np.count_nonzero(inside_a & inside_b) / union) if union else 1.0


def volumetric_iou(pred: trimesh.Trimesh, gt: trimesh.Trimesh, num: int = NUM_VOLUME, seed: int = SEED,
                   padding: float = IOU_PADDING) -> float:
    """IoU of the solids, over :func:`volume_samples` of GT, inside/outside by generalized winding number."""
    points = volume_samples(gt, num, seed, padding)
    return iou_of_labels(inside(pred.vertices, pred.faces, points), inside(gt.vertices, gt.faces, points))


def evaluate_meshes(pred: trimesh.Trimesh, gt: trimesh.Trimesh, num_surface: int = NUM_SURFACE,
                    num_volume: int = NUM_VOLUME, seed: int = SEED) -> dict[str, float]:
    """Every metric of the protocol (``docs/metrics.md``), in GT's unit frame.

    Returns a dict with keys (:data:`METRIC_KEYS`): chamfer (squared, to the
    surface), chamfer_points (squared, to the other mesh's samples), chamfer_l1
    (mean distance to the surface, averaged over both directions), hausdorff
    (largest sample-to-surface distance), fscore_1pct, fscore_05pct,
    normal_consistency, iou.
    """
    if num_surface < 1 or num_volume < 1:
        raise SdfkitError("sample counts must be positive")
    pred, gt = to_gt_frame(pred, gt)
    pa, na = surface_samples(pred, num_surface, seed)
    pb, nb = surface_samples(gt, num_surface, seed + 1)
    d_ab, f_ab = distance_to_surface(pa, gt)
    d_ba, f_ba = distance_to_surface(pb, pred)
    out = {
        "chamfer": chamfer_from_distances(d_ab, d_ba),
        "chamfer_points": chamfer_to_points(pa, pb),
        "chamfer_l1": float((np.mean(d_ab) + np.mean(d_ba)) / 2.0),
        "hausdorff": float(max(d_ab.max(), d_ba.max())),
    }
    for key, threshold in FSCORE_THRESHOLDS.items():
        out[key] = fscore(d_ab, d_ba, threshold)
    out["normal_consistency"] = normal_consistency(na, f_ab, gt, nb, f_ba, pred)
    out["iou"] = volumetric_iou(pred, gt, num_volume, seed)
    return out


def evaluate_to_points(pred: trimesh.Trimesh, points: np.ndarray, num_surface: int = NUM_SURFACE,
                       seed: int = SEED) -> dict[str, float]:
    """A reconstruction against the point cloud it was fitted to (there is no surface to compare with).

    Both are put in the cloud's unit frame (bounding-box centre to 0, farthest point at radius 1). From the
    cloud's points (a random ``num_surface`` of them) to the exact reconstructed surface, and from
    ``num_surface`` samples of that surface to the nearest cloud point. Returns chamfer (squared, both ways
    summed as :func:`chamfer_from_distances`), chamfer_l1, hausdorff, fscore_1pct and fscore_05pct. Distances to
    the cloud's points overstate the distance to the scanned surface by up to the points' spacing.
    """
    pred = _checked(pred, "predicted")
    norm = cloud_normalization(points)
    cloud = norm.to_unit(points)
    rng = np.random.default_rng(seed)
    if len(cloud) > num_surface:
        cloud = cloud[rng.choice(len(cloud), size=num_surface, replace=False)]
    unit = trimesh.Trimesh(norm.to_unit(pred.vertices), pred.faces, process=False)
    samples, _ = surface_samples(unit, num_surface, seed)
    d_cloud, _ = distance_to_surface(cloud, unit)
    d_pred, _ = KDTree(cloud).query(samples)
    out = {
        "chamfer": chamfer_from_distances(d_pred, d_cloud),
        "chamfer_l1": float((np.mean(d_pred) + np.mean(d_cloud)) / 2.0),
        "hausdorff": float(max(d_pred.max(), d_cloud.max())),
    }
    for key, threshold in FSCORE_THRESHOLDS.items():
        out[key] = fscore(d_pred, d_cloud, threshold)
    return out
