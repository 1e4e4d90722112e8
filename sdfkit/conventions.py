"""Metrics in the conventions of DeepSDF and Occupancy Networks, for comparison with numbers in the literature.

sdfkit's own protocol (:mod:`sdfkit.metrics`, ``docs/metrics.md``) works in
GT's unit-sphere frame with distances to the other surface. The papers differ:

- **DeepSDF** (``deep_sdf/metrics/chamfer.py``): 30,000 surface samples per
  mesh, squared distance to the nearest *sample* of the other mesh, the two
  one-way means summed, in the GT's **original units**. Equals sdfkit's
  ``chamfer_points`` x R^2, R the GT's unit-sphere radius in its own units.
- **OccNet** (``im2mesh/eval.py``): both meshes in GT's **unit cube** (longest
  box edge L = 1); 100,000 surface samples per mesh, distance to the nearest
  sample of the other mesh; Chamfer-L1 and -L2 are the *means* of the two
  directions (of distances and of squared distances); normal consistency
  from the nearest sample's normal (|cos|, mean of both directions);
  IoU on 100,000 uniform points in the cube of edge 1.1 around GT's box;
  F-score at 1% of the cube's edge.

Each function returns keys prefixed by its convention's name, so numbers of
different conventions never share a name.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import KDTree

from data_prep.mesh import fit_normalization
from data_prep.sdf import inside
from sdfkit.errors import SdfkitError
from sdfkit.metrics import SEED, chamfer_to_points, fscore, iou_of_labels, surface_samples, to_gt_frame

CONVENTIONS = ("sdfkit", "deepsdf", "occnet")
DEEPSDF_SAMPLES = 30_000
OCCNET_SAMPLES = 100_000
OCCNET_VOLUME = 100_000
#: OccNet's IoU box: the unit cube grown to this edge.
OCCNET_BOX = 1.1
#: F-score threshold, as a fraction of the unit cube's edge.
OCCNET_FSCORE = 0.01


def deepsdf_metrics(pred: trimesh.Trimesh, gt: trimesh.Trimesh, num: int = DEEPSDF_SAMPLES,
                    seed: int = SEED) -> dict[str, float]:
    """``deepsdf_chamfer``: DeepSDF's Chamfer distance in GT's original units (see the module docstring)."""
    radius = fit_normalization(gt).scale
    pred_u, gt_u = to_gt_frame(pred, gt)
    pa, _ = surface_samples(pred_u, num, seed)
    pb, _ = surface_samples(gt_u, num, seed + 1)
    return {"deepsdf_chamfer": chamfer_to_points(pa, pb) * radius**2}


def occnet_metrics(pred: trimesh.Trimesh, gt: trimesh.Trimesh, num: int = OCCNET_SAMPLES,
                   num_volume: int = OCCNET_VOLUME, seed: int = SEED) -> dict[str, float]:
    """OccNet's metrics in GT's unit cube: ``occnet_chamfer_l1``, ``occnet_chamfer_l2``,
    ``occnet_normal_consistency``, ``occnet_iou``, ``occnet_fscore_1pct``."""
    pred_u, gt_u = to_gt_frame(pred, gt)
    lo, hi = np.asarray(gt_u.bounds, dtype=np.float64)
    edge = float((hi - lo).max())  # GT's longest box edge in the unit-sphere frame: the unit cube's 1
    pa, na = surface_samples(pred_u, num, seed)
    pb, nb = surface_samples(gt_u, num, seed + 1)
    d_ab, i_ab = KDTree(pb).query(pa, workers=-1)
    d_ba, i_ba = KDTree(pa).query(pb, workers=-1)
    d_ab, d_ba = d_ab / edge, d_ba / edge
    cos_ab = np.abs(np.einsum("ij,ij->i", na, nb[i_ab]))
    cos_ba = np.abs(np.einsum("ij,ij->i", nb, na[i_ba]))
    center = (lo + hi) / 2.0
    half = OCCNET_BOX * edge / 2.0
    points = np.random.default_rng(seed).uniform(center - half, center + half, size=(int(num_volume), 3))
    iou = iou_of_labels(inside(pred_u.vertices, pred_u.faces, points), inside(gt_u.vertices, gt_u.faces, points))
    return {
        "occnet_chamfer_l1": float((d_ab.mean() + d_ba.mean()) / 2.0),
        "occnet_chamfer_l2": float((np.square(d_ab).mean() + np.square(d_ba).mean()) / 2.0),
        "occnet_normal_consistency": float((cos_ab.mean() + cos_ba.mean()) / 2.0),
        "occnet_iou": iou,
        "occnet_fscore_1pct": fscore(d_ab, d_ba, OCCNET_FSCORE),
    }


def convention_metrics(convention: str, pred: trimesh.Trimesh, gt: trimesh.Trimesh) -> dict[str, float]:
    """The metrics of ``convention`` (``deepsdf`` or ``occnet``) with their defaults."""
    if convention == "deepsdf":
        return deepsdf_metrics(pred, gt)
    if convention == "occnet":
        return occnet_metrics(pred, gt)
    raise SdfkitError(f"unknown convention '{convention}' (choose from deepsdf, occnet)")
