"""Writing meshes: format chosen by the output's extension, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_path

#: Extensions ``export_mesh`` writes.
FORMATS = (".obj", ".ply", ".stl", ".glb", ".off")


def check_format(path: str | Path) -> str:
    """The mesh format of ``path`` by its extension; one-line error for one sdfkit cannot write."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SdfkitError(f"cannot write '{Path(path).suffix or Path(path).name}': "
                          f"choose an extension from {', '.join(FORMATS)}")
    return suffix


def export_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write ``mesh`` to ``path`` (obj, ply, stl, glb or off by extension); nothing is left on failure.

    The file appears only when complete (:func:`sdfkit.io.atomic_path`); an
    unknown extension, an empty mesh or non-finite vertices raise a one-line
    :class:`SdfkitError` before anything is written. Returns ``path``.
    """
    path = Path(path)
    suffix = check_format(path)
    if len(mesh.faces) == 0:
        raise SdfkitError("refusing to write an empty mesh")
    if not np.isfinite(np.asarray(mesh.vertices)).all():
        raise SdfkitError("refusing to write a mesh with NaN or infinite vertices")
    data = mesh.export(file_type=suffix[1:])
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes):  # formats written as several files (gltf) are not offered
        raise SdfkitError(f"cannot write {path.name}: its format needs several files")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
