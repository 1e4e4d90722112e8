"""A prep manifest: one row per mesh with its facts, how its samples were signed, how far to trust them.

Written by ``sdfkit prep`` beside the samples as ``manifest.csv`` and
``manifest.json``. Each row holds the mesh's faces, vertices, parts
(connected components), objects (:mod:`data_prep.objects`), whether it is
watertight, the normalisation (centre and scale), the sign method and two
sign-consistency figures measured on a random subset of the shape's own
samples:

- ``sign_conflicts``: the share of samples that contradict their nearest
  other sample. A signed distance is 1-Lipschitz, so two samples ``p``, ``q``
  of opposite sign need ``|s(p)| + |s(q)| <= |p - q|`` (the surface must fit
  between them); with exact distances a pair that breaks this has a wrong
  sign. Method-independent: it judges mesh-to-sdf's samples as well.
- ``winding_ambiguous``: the share of samples whose generalized winding
  number lies in [0.25, 0.75] (in absolute value), i.e. far from both 0
  (outside) and 1 (inside): the sign there is a coin toss decided by holes.

**Rejection rule.** A mesh is rejected (its samples are kept on disk but left
out of the split file, so training and folder fits skip it) when
``sign_conflicts > MAX_SIGN_CONFLICTS`` or ``winding_ambiguous >
MAX_WINDING_AMBIGUOUS``. DeepSDF's preprocessing rejects a mesh when too many
of its samples' signs are uncertain (its visibility test); these two figures
are sdfkit's measure of the same thing for winding-number signs.

The limits come from the real soup of ``../shared/meshes/airplanes/val`` and
``chairs/val`` (20,000 samples each, default preset): open surfaces and thin
wings put 0-4.8% of the samples of every airplane and of every chair but one
at an ambiguous winding number, and at most 0.15% of them in conflict; the one
outlier, ``blendswap_ccby_armchair2`` (a cushioned armchair of open sheets),
has 29.6% ambiguous and 0.49% in conflict, and is the one rejected.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
from scipy.spatial import KDTree

from data_prep.files import atomic_write_text
from data_prep.mesh import Normalization
from data_prep.objects import object_diagonals, part_labels
from data_prep.sdf import winding_number

#: Samples of a shape the consistency figures are measured on.
CHECK_SAMPLES = 20_000
#: Rejection thresholds (see the module docstring).
MAX_SIGN_CONFLICTS = 0.01
MAX_WINDING_AMBIGUOUS = 0.10
#: Winding numbers in [lo, hi] (absolute value) are ambiguous.
AMBIGUOUS_WINDING = (0.25, 0.75)
#: Slack of the Lipschitz test, in unit-frame lengths (float32 samples).
LIPSCHITZ_SLACK = 1e-5


@dataclasses.dataclass
class ManifestRow:
    """One mesh of a prep run (see the module docstring for the figures)."""

    shape: str
    """``class/instance.npz``: the samples file, relative to the prep output folder."""
    mesh: str
    faces: int = 0
    vertices: int = 0
    parts: int = 0
    objects: int = 0
    watertight: bool = False
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 0.0
    sign_method: str = ""
    sign_conflicts: float = float("nan")
    winding_ambiguous: float = float("nan")
    rejected: bool = False
    reason: str = ""


def sign_conflicts(points: np.ndarray, sdf: np.ndarray) -> float:
    """Share of (n, 3) ``points`` whose nearest other point has the opposite sign of (n,) ``sdf`` although
    the two distances cannot both hold (``|s(p)| + |s(q)| > |p - q|``)."""
    dist, idx = KDTree(points).query(points, k=2)
    q, gap = np.asarray(idx)[:, 1], np.asarray(dist)[:, 1]
    opposite = np.sign(sdf) * np.sign(sdf[q]) < 0
    clash = opposite & (np.abs(sdf) + np.abs(sdf[q]) > gap + LIPSCHITZ_SLACK)
    return float(np.mean(clash))


def winding_ambiguity(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> float:
    """Share of (n, 3) ``points`` whose |generalized winding number| lies in :data:`AMBIGUOUS_WINDING`."""
    w = np.abs(winding_number(vertices, faces, points))
    lo, hi = AMBIGUOUS_WINDING
    return float(np.mean((w >= lo) & (w <= hi)))


def rejection(conflicts: float, ambiguous: float) -> str:
    """Why a mesh with these figures is rejected, or "" when it is kept."""
    reasons = []
    if conflicts > MAX_SIGN_CONFLICTS:
        reasons.append(f"{conflicts:.2%} of samples contradict a neighbour's sign (limit {MAX_SIGN_CONFLICTS:.0%})")
    if ambiguous > MAX_WINDING_AMBIGUOUS:
        reasons.append(f"{ambiguous:.2%} of samples have an ambiguous winding number "
                       f"(limit {MAX_WINDING_AMBIGUOUS:.0%})")
    return "; ".join(reasons)


def inspect_shape(shape: str, mesh_path: Path, mesh_unit, points: np.ndarray, sdf: np.ndarray,
                  normalization: Normalization, sign_method: str, seed: int = 0) -> ManifestRow:
    """The manifest row of one mesh, from its unit-frame mesh and its (n, 3) samples and (n,) distances."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(points), size=min(CHECK_SAMPLES, len(points)), replace=False)
    p, s = np.asarray(points, dtype=np.float64)[pick], np.asarray(sdf, dtype=np.float64)[pick]
    conflicts = sign_conflicts(p, s)
    ambiguous = winding_ambiguity(np.asarray(mesh_unit.vertices), np.asarray(mesh_unit.faces), p)
    reason = rejection(conflicts, ambiguous)
    cx, cy, cz = (float(c) for c in normalization.center)
    return ManifestRow(
        shape=shape, mesh=str(mesh_path), faces=len(mesh_unit.faces), vertices=len(mesh_unit.vertices),
        parts=int(part_labels(mesh_unit).max()) + 1, objects=len(object_diagonals(mesh_unit)),
        watertight=bool(mesh_unit.is_watertight), center=(cx, cy, cz),
        scale=float(normalization.scale), sign_method=sign_method, sign_conflicts=conflicts,
        winding_ambiguous=ambiguous, rejected=bool(reason), reason=reason)


def failed_row(shape: str, mesh_path: Path, reason: str) -> ManifestRow:
    """The row of a mesh that could not be sampled at all."""
    return ManifestRow(shape=shape, mesh=str(mesh_path), rejected=True, reason=reason)


def manifest_text(rows: list[ManifestRow]) -> tuple[str, str]:
    """(CSV, JSON) text of a manifest; the JSON also states the rejection rule."""
    fields = [f.name for f in dataclasses.fields(ManifestRow)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        data = dataclasses.asdict(row)
        data["center"] = " ".join(f"{c:.9g}" for c in row.center)
        writer.writerow(data)
    rule = {"max_sign_conflicts": MAX_SIGN_CONFLICTS, "max_winding_ambiguous": MAX_WINDING_AMBIGUOUS,
            "ambiguous_winding": list(AMBIGUOUS_WINDING), "check_samples": CHECK_SAMPLES}
    meshes = [{k: (None if isinstance(v, float) and v != v else v) for k, v in dataclasses.asdict(r).items()}
              for r in rows]
    doc = {"rule": rule, "meshes": meshes,
           "kept": sum(not r.rejected for r in rows), "rejected": sum(r.rejected for r in rows)}
    return buf.getvalue(), json.dumps(doc, indent=2) + "\n"


def write_manifest(out_dir: str | Path, rows: list[ManifestRow], suffix: str = "") -> None:
    """Write ``manifest<suffix>.csv`` and ``manifest<suffix>.json`` in ``out_dir`` atomically."""
    text_csv, text_json = manifest_text(rows)
    atomic_write_text(Path(out_dir) / f"manifest{suffix}.csv", text_csv)
    atomic_write_text(Path(out_dir) / f"manifest{suffix}.json", text_json)


def row_from_json(data: dict) -> ManifestRow:
    """A :class:`ManifestRow` from its ``manifest.json`` form (``None`` for a figure that was not measured).

    Raises TypeError or KeyError for a row of another manifest version.
    """
    floats = {"sign_conflicts", "winding_ambiguous"}
    values: dict = {k: (float("nan") if k in floats and v is None else v) for k, v in data.items()}
    return ManifestRow(**{**values, "center": tuple(data["center"])})


def read_manifest(out_dir: str | Path, suffix: str = "") -> dict[str, dict]:
    """The rows of ``<out_dir>/manifest<suffix>.json`` by shape (empty when there is none or it is unreadable)."""
    try:
        doc = json.loads((Path(out_dir) / f"manifest{suffix}.json").read_text(encoding="utf-8"))
        return {row["shape"]: row for row in doc["meshes"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
