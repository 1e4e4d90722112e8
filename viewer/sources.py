"""What to look at: a fit's output folder or a mesh's exact SDF, as a :class:`ViewSource`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import trimesh

from sdfkit.errors import SdfkitError


@dataclasses.dataclass
class ViewSource:
    """What the viewer shows, all in the unit frame: a field, its box, meshes.

    ``normalization`` (a :class:`data_prep.mesh.Normalization`) maps the unit frame to the input's units;
    None when unknown.
    """

    field: Callable[[np.ndarray], np.ndarray]
    bounds: tuple[np.ndarray, np.ndarray]
    mesh: trimesh.Trimesh
    gt: trimesh.Trimesh | None = None
    title: str = "sdfkit"
    normalization: object | None = None


def exact_source(mesh_path: str | Path) -> ViewSource:
    """A mesh and its exact SDF, in the mesh's unit frame."""
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import MeshSDF

    unit, norm = normalize_mesh(load_mesh(mesh_path))
    lo, hi = unit.bounds
    pad = 0.05 * float((hi - lo).max())
    return ViewSource(MeshSDF(unit), (lo - pad, hi + pad), unit, None, f"{Path(mesh_path).name} (exact SDF)", norm)


def fitted_source(fit_dir: str | Path, gt: str | Path | None = None, device: str = "cpu") -> ViewSource:
    """A fit's field and mesh, with the ground truth (``gt``, or the fit's input when it still exists)."""
    from data_prep.mesh import load_mesh
    from sdfkit.fit_output import load_fitted

    fitted = load_fitted(fit_dir, device=device)
    if not fitted.mesh_path.is_file():
        raise SdfkitError(f"{fit_dir} has no mesh ({fitted.mesh_path.name} is missing)")
    recon = cast(trimesh.Trimesh, trimesh.load(fitted.mesh_path, force="mesh", process=False))
    recon = trimesh.Trimesh(fitted.normalization.to_unit(recon.vertices), recon.faces, process=False)
    gt_path = Path(gt) if gt else fitted.source
    truth = None
    if gt_path is not None and gt_path.is_file():
        g = load_mesh(gt_path)
        truth = trimesh.Trimesh(fitted.normalization.to_unit(g.vertices), g.faces, process=False)
    elif gt:
        raise SdfkitError(f"ground-truth mesh not found: {gt}")
    return ViewSource(fitted.field, fitted.bounds, recon, truth, f"{Path(fit_dir).name} (fitted)", fitted.normalization)


def load_source(path: str | Path, exact: bool = False, gt: str | Path | None = None, device: str = "cpu") -> ViewSource:
    """``path`` is a fit output folder, or with ``exact`` a mesh file."""
    path = Path(path)
    if exact:
        return exact_source(path)
    if path.is_file():
        raise SdfkitError(f"{path} is a file: pass --exact to view a mesh's exact SDF, or give a fit output folder")
    return fitted_source(path, gt, device)
