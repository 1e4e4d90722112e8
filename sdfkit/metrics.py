"""Mesh-to-mesh metrics under one protocol (``docs/metrics.md``).

Both meshes are put in the ground truth's unit-sphere frame (the same
transform for both). Surface metrics use 30,000 area-weighted samples per
surface (fixed seed) and exact point-to-triangle distances to the *other
surface*; volumetric IoU uses 1,000,000 uniform points in the ground truth's
bounding box padded by 5%, classified by generalized winding number.
"""

from __future__ import annotations

import numpy as np
import point_cloud_utils as pcu
import trimesh
from scipy.spatial import cKDTree

from data_prep.mesh import fit_normalization
from data_prep.sdf import inside

NUM_SURFACE = 30_000
NUM_VOLUME = 1_000_000
SEED = 0
#: F-score thresholds, as fractions of the unit radius.
FSCORE_THRESHOLDS = {"fscore_1pct": 0.01, "fscore_05pct": 0.005}


def surface_samples(mesh: trimesh.Trimesh, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 3) points by area and (count, 3) unit normals of their faces."""
    from data_prep.sampling import sample_surface

    return sample_surface(mesh, count, np.random.default_rng(seed))


def distance_to_surface(points: np.ndarray, mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance from each of (n, 3) points to ``mesh``, and the index of the closest face."""
    d, face, _ = pcu.closest_points_on_mesh(np.ascontiguousarray(points, dtype=np.float64),
                                            np.ascontiguousarray(mesh.vertices, dtype=np.float64),
                                            np.ascontiguousarray(mesh.faces, dtype=np.int64))
    return np.asarray(d, dtype=np.float64), np.asarray(face, dtype=np.int64)


def chamfer_to_surface(a: trimesh.Trimesh, b: trimesh.Trimesh, num: int = NUM_SURFACE, seed: int = SEED) -> float:
    """mean_{p in A} d(p, B)^2 + mean_{q in B} d(q, A)^2, with d the exact distance to the surface."""
    pa, _ = surface_samples(a, num, seed)
    pb, _ = surface_samples(b, num, seed + 1)
    return float(np.mean(distance_to_surface(pa, b)[0] ** 2) + np.mean(distance_to_surface(pb, a)[0] ** 2))


def volumetric_iou(pred: trimesh.Trimesh, gt: trimesh.Trimesh, num: int = NUM_VOLUME, seed: int = SEED, padding: float = 0.05) -> float:
    """|inside both| / |inside either| over uniform points in GT's bounding box padded by ``padding``."""
    lo, hi = gt.bounds
    pad = padding * (hi - lo)
    pts = np.random.default_rng(seed).uniform(lo - pad, hi + pad, size=(num, 3))
    a = inside(pred.vertices, pred.faces, pts)
    b = inside(gt.vertices, gt.faces, pts)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def evaluate_meshes(pred: trimesh.Trimesh, gt: trimesh.Trimesh, num_surface: int = NUM_SURFACE,
                    num_volume: int = NUM_VOLUME, seed: int = SEED) -> dict[str, float]:
    """Every metric of the protocol, in GT's unit frame. Keys: chamfer, chamfer_points, chamfer_l1,
    hausdorff, fscore_1pct, fscore_05pct, normal_consistency, iou."""
    norm = fit_normalization(gt)
    gt = trimesh.Trimesh(norm.to_unit(gt.vertices), gt.faces, process=False)
    pred = trimesh.Trimesh(norm.to_unit(pred.vertices), pred.faces, process=False)
    pa, na = surface_samples(pred, num_surface, seed)
    pb, nb = surface_samples(gt, num_surface, seed + 1)
    d_ab, f_ab = distance_to_surface(pa, gt)
    d_ba, f_ba = distance_to_surface(pb, pred)
    d_pts_ab, _ = cKDTree(pb).query(pa, workers=-1)
    d_pts_ba, _ = cKDTree(pa).query(pb, workers=-1)
    out = {
        "chamfer": float(np.mean(d_ab**2) + np.mean(d_ba**2)),
        "chamfer_points": float(np.mean(d_pts_ab**2) + np.mean(d_pts_ba**2)),
        "chamfer_l1": float((np.mean(d_ab) + np.mean(d_ba)) / 2.0),
        "hausdorff": float(max(d_ab.max(), d_ba.max())),
    }
    for key, tau in FSCORE_THRESHOLDS.items():
        precision, recall = np.mean(d_ab < tau), np.mean(d_ba < tau)
        out[key] = float(2 * precision * recall / (precision + recall)) if precision + recall > 0 else 0.0
    cos_ab = np.abs(np.sum(na * np.asarray(gt.face_normals)[f_ab], axis=1))
    cos_ba = np.abs(np.sum(nb * np.asarray(pred.face_normals)[f_ba], axis=1))
    out["normal_consistency"] = float((cos_ab.mean() + cos_ba.mean()) / 2.0)
    out["iou"] = volumetric_iou(pred, gt, num_volume, seed)
    return out
