"""What the viewer looks at: a field, its normalization and its meshes.

A :class:`Subject` is built either from a mesh (its exact SDF) or from a fit's
output folder (its neural field, via :func:`sdfkit.fitted.load_fitted`). The
viewer only needs the :class:`FittedLike` interface, so any object with
``field``, ``normalization``, ``bounds``, ``mesh_path`` and ``source`` works.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import trimesh

from sdfkit.errors import SdfkitError

# Box around a mesh's unit-frame bounds for exact fields: slices show some outside.
EXACT_MARGIN = 0.1


class FittedLike(Protocol):
    """A fitted scene as ``sdfkit.fitted.load_fitted`` returns it."""

    field: Callable[[np.ndarray], np.ndarray]
    normalization: object
    bounds: tuple[np.ndarray, np.ndarray]
    mesh_path: Path
    source: Path


@dataclasses.dataclass
class Subject:
    """A field to look at, in the unit frame.

    Attributes
    ----------
    name : str
        Shown in the page title.
    field : callable
        (n, 3) float32 unit-frame points -> (n,) float32 signed distances (negative inside).
    normalization : data_prep.mesh.Normalization
        Unit frame <-> input units.
    bounds : ((3,) float, (3,) float)
        Unit-frame box the slices cover.
    mesh : trimesh.Trimesh
        The shape shown in 3D, in the unit frame: the reconstruction of a fit, or the mesh itself.
    reference : trimesh.Trimesh or None
        Ground truth in the unit frame, where known.
    exact : bool
        Whether ``field`` is a mesh's exact SDF.
    """

    name: str
    field: Callable[[np.ndarray], np.ndarray]
    normalization: object
    bounds: tuple[np.ndarray, np.ndarray]
    mesh: trimesh.Trimesh
    reference: trimesh.Trimesh | None
    exact: bool


def _unit_mesh(mesh: trimesh.Trimesh, normalization) -> trimesh.Trimesh:
    return trimesh.Trimesh(normalization.to_unit(np.asarray(mesh.vertices)), np.asarray(mesh.faces), process=False)


def exact_bounds(unit_mesh: trimesh.Trimesh, margin: float = EXACT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Unit-frame box around ``unit_mesh`` grown by ``margin`` on every side."""
    lo, hi = np.asarray(unit_mesh.bounds, dtype=np.float64)
    return (lo - margin).astype(np.float32), (hi + margin).astype(np.float32)


def exact_subject(mesh_path: str | Path) -> Subject:
    """The exact SDF of the mesh at ``mesh_path`` (``data_prep.sdf.MeshSDF`` in the unit frame)."""
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import MeshSDF

    unit, norm = normalize_mesh(load_mesh(mesh_path))
    return Subject(Path(mesh_path).name, MeshSDF(unit), norm, exact_bounds(unit), unit, None, True)


def subject_from_fitted(fitted: FittedLike, exact: bool = False, name: str = "fit") -> Subject:
    """A fit's field with its reconstruction, and its input mesh as ground truth when that is on disk.

    With ``exact``, the field is the input mesh's exact SDF instead (the reconstruction is still shown).
    """
    from data_prep.mesh import load_mesh
    from data_prep.sdf import MeshSDF

    norm = fitted.normalization
    mesh_path = Path(fitted.mesh_path)
    if not mesh_path.is_file():
        raise SdfkitError(f"the fit's mesh is missing: {mesh_path}")
    recon = _unit_mesh(load_mesh(mesh_path), norm)
    source = Path(fitted.source) if fitted.source else None
    reference = _unit_mesh(load_mesh(source), norm) if source is not None and source.is_file() else None
    lo, hi = (np.asarray(b, dtype=np.float32) for b in fitted.bounds)
    if exact:
        if reference is None:
            raise SdfkitError(f"--exact needs the fit's input mesh, which is missing: {source}")
        return Subject(f"{name} (exact SDF of {source.name})", MeshSDF(reference), norm, (lo, hi), recon, reference, True)
    return Subject(name, fitted.field, norm, (lo, hi), recon, reference, False)


def open_subject(path: str | Path, exact: bool = False, device: str = "cpu") -> Subject:
    """A fit's output folder (or its ``latents.pt``) on ``device``, or a mesh file (always its exact SDF)."""
    from data_prep.mesh import MESH_SUFFIXES

    path = Path(path)
    if not path.exists():
        raise SdfkitError(f"not found: {path}")
    if path.is_file() and path.suffix.lower() in MESH_SUFFIXES:
        return exact_subject(path)
    if path.is_dir() or path.suffix == ".pt":
        from sdfkit.fitted import load_fitted

        folder = path if path.is_dir() else path.parent
        return subject_from_fitted(load_fitted(path, device=device), exact=exact, name=folder.resolve().name)
    raise SdfkitError(f"{path} is neither a mesh ({', '.join(sorted(MESH_SUFFIXES))}) nor a fit's output folder")
