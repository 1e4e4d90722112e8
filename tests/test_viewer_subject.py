"""What the viewer looks at: exact fields and fitted scenes (viewer.subject)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfkit.errors import SdfkitError
from viewer.subject import exact_subject, open_subject, subject_from_fitted


@dataclasses.dataclass
class FakeFitOutput:
    """The FittedLike interface, filled with real pieces: an exact field, a real normalization and real files."""

    field: object
    normalization: object
    bounds: tuple
    mesh_path: Path
    source: Path


def test_exact_subject_is_in_the_unit_frame(sphere_mesh_file):
    subject = exact_subject(sphere_mesh_file)
    assert subject.exact and subject.reference is None
    assert np.max(np.linalg.norm(subject.mesh.vertices, axis=1)) == pytest.approx(1.0, abs=1e-6)
    lo, hi = subject.bounds
    assert np.all(lo < subject.mesh.bounds[0]) and np.all(hi > subject.mesh.bounds[1])
    d = subject.field(np.array([[0, 0, 0], [2, 0, 0]], dtype=np.float32))
    assert d[0] == pytest.approx(-1.0, abs=0.02) and d[1] == pytest.approx(1.0, abs=0.02)  # negative inside
    # The sphere was centred at (1, 2, 3) with radius 0.5: the normalization maps it back.
    np.testing.assert_allclose(subject.normalization.from_unit(np.zeros((1, 3)))[0], (1, 2, 3), atol=1e-6)


def _fit_output(tmp_path: Path, sphere_mesh_file: Path, keep_source: bool = True) -> FakeFitOutput:
    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import MeshSDF

    unit, norm = normalize_mesh(load_mesh(sphere_mesh_file))
    recon = trimesh.creation.icosphere(subdivisions=2, radius=0.49)  # a coarser sphere, in input units
    recon.apply_translation((1.0, 2.0, 3.0))
    recon_path = tmp_path / "mesh.obj"
    recon.export(recon_path)
    source = sphere_mesh_file if keep_source else tmp_path / "gone.obj"
    return FakeFitOutput(MeshSDF(unit), norm, (np.full(3, -1.1), np.full(3, 1.1)), recon_path, source)


def test_fitted_subject_brings_meshes_into_the_unit_frame(tmp_path, sphere_mesh_file):
    subject = subject_from_fitted(_fit_output(tmp_path, sphere_mesh_file), name="sphere")
    assert not subject.exact and subject.reference is not None
    np.testing.assert_allclose(np.linalg.norm(subject.mesh.vertices, axis=1), 0.98, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(subject.reference.vertices, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(subject.bounds[0], -1.1)


def test_fitted_subject_without_its_source(tmp_path, sphere_mesh_file):
    fit = _fit_output(tmp_path, sphere_mesh_file, keep_source=False)
    assert subject_from_fitted(fit).reference is None
    with pytest.raises(SdfkitError, match="missing"):
        subject_from_fitted(fit, exact=True)
    fit.mesh_path.unlink()
    with pytest.raises(SdfkitError, match="mesh is missing"):
        subject_from_fitted(fit)


def test_open_subject_errors(tmp_path):
    with pytest.raises(SdfkitError, match="not found"):
        open_subject(tmp_path / "nothing.obj")
    text = tmp_path / "notes.txt"
    text.write_text("not a mesh")
    with pytest.raises(SdfkitError, match="neither a mesh"):
        open_subject(text)
    with pytest.raises(SdfkitError, match="latents"):
        open_subject(tmp_path)  # a folder without a fit in it
