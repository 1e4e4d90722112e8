"""Writing meshes: format chosen by the output's extension, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_path

if TYPE_CHECKING:  # trimesh takes a second to import: the CLI reads DEFAULT_FACES before any command runs
    import trimesh

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


#: Faces ``fit`` writes to ``mesh.<format>`` and ``mesh --faces`` keeps by default (0: every face marching cubes
#: made). At 100,000 faces the penguin's 256^3 mesh (503,032 faces, 20 MB as OBJ) drops to about a fifth of its
#: size, and its Chamfer distance to the full mesh stays far below the fit's own error (BENCHMARKS.md,
#: ``benchmarks/simplify.py``).
DEFAULT_FACES = 100_000


def check_faces(faces: int) -> int:
    """``faces`` when it is 0 (keep every face) or at least 4 (a tetrahedron); else a one-line error."""
    if faces != 0 and faces < 4:
        raise SdfkitError(f"--faces must be 0 (keep every face) or at least 4, got {faces}")
    return int(faces)


def simplify_mesh(mesh: trimesh.Trimesh, faces: int = DEFAULT_FACES) -> trimesh.Trimesh:
    """``mesh`` with at most about ``faces`` triangles, by quadric edge collapse (fast-simplification).

    Parameters
    ----------
    mesh : (V, 3) vertices and (F, 3) faces, in any units.
    faces : target triangle count; 0, or a mesh with no more faces than this, returns ``mesh`` itself.

    Returns
    -------
    mesh : a new trimesh.Trimesh of (V', 3) vertices and (F', 3) faces, F' <= max(faces, F) and within a few
        faces of ``faces``; orientation kept.
    """
    import fast_simplification
    import trimesh

    faces = check_faces(faces)
    if faces == 0 or len(mesh.faces) <= faces:
        return mesh
    vertices, triangles = fast_simplification.simplify(np.asarray(mesh.vertices, dtype=np.float64),
                                                       np.asarray(mesh.faces, dtype=np.int32), target_count=faces)[:2]
    out = trimesh.Trimesh(vertices, triangles, process=False)
    # Collapses can leave a few degenerate triangles and orphaned vertices; drop them as extraction does.
    out.update_faces(out.nondegenerate_faces())
    out.remove_unreferenced_vertices()
    return out


def write_simplified(mesh: trimesh.Trimesh, path: str | Path, faces: int = DEFAULT_FACES,
                     full_path: str | Path | None = None) -> tuple[trimesh.Trimesh, dict]:
    """Write ``mesh`` simplified to ``faces`` at ``path`` and, when ``full_path`` is given, ``mesh`` itself there.

    Returns the simplified mesh and the ``meshes`` entry of a fit's ``report.json`` (``docs/report.md``):
    ``{"mesh": {...}, "full": {...}}``, each with ``file`` (None: not written), ``faces``, ``vertices`` and
    ``bytes`` (None: not written); ``mesh`` also has ``target_faces`` (0: not simplified).
    """
    path = Path(path)
    simplified = simplify_mesh(mesh, faces)
    export_mesh(simplified, path)
    full = {"file": None, "faces": len(mesh.faces), "vertices": len(mesh.vertices), "bytes": None}
    if full_path is not None:
        export_mesh(mesh, full_path)
        full.update(file=Path(full_path).name, bytes=Path(full_path).stat().st_size)
    entry = {"file": path.name, "faces": len(simplified.faces), "vertices": len(simplified.vertices),
             "bytes": path.stat().st_size, "target_faces": faces}
    return simplified, {"mesh": entry, "full": full}


def simplification_chamfer(simplified: trimesh.Trimesh, full: trimesh.Trimesh, gt: trimesh.Trimesh) -> float:
    """Chamfer distance (squared, to the surface; ``docs/metrics.md``) of ``simplified`` to ``full`` in ``gt``'s unit
    frame, so that it compares with the fit's own Chamfer to ``gt``; 0.0 when nothing was simplified."""
    from sdfkit.metrics import chamfer_to_surface, to_gt_frame

    if simplified is full:
        return 0.0
    a, _ = to_gt_frame(simplified, gt)
    b, _ = to_gt_frame(full, gt)
    return chamfer_to_surface(a, b)
