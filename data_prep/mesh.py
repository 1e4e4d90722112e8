"""Mesh loading, cleaning and normalisation into the unit sphere.

Every later stage works in the *normalised frame*: the mesh's bounding-box
centre at the origin and its farthest vertex at radius ``radius`` (1 by
default). :class:`Normalization` keeps the map back to the input's own units.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np
import trimesh
from trimesh.resolvers import FilePathResolver

from data_prep.errors import SdfkitError

#: File suffixes treated as meshes when a folder is scanned.
MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")

#: A mesh whose smallest principal extent is below this fraction of its
#: largest is flat (no volume), and has no inside to sign distances by.
FLAT_TOLERANCE = 1e-7


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Similarity transform between the input's units and the normalised frame.

    ``x_unit = (x_input - center) / scale`` and ``x_input = x_unit * scale + center``.
    Signed distances scale the same way: ``d_input = d_unit * scale``.
    """

    center: tuple[float, float, float]
    scale: float

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) points in input units -> (n, 3) points in the normalised frame."""
        return (np.asarray(points, dtype=np.float64) - np.asarray(self.center)) / self.scale

    def from_unit(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) points in the normalised frame -> (n, 3) points in input units."""
        return np.asarray(points, dtype=np.float64) * self.scale + np.asarray(self.center)

    def to_dict(self) -> dict:
        return {"center": [float(c) for c in self.center], "scale": float(self.scale)}

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        center = tuple(float(c) for c in data["center"])
        scale = float(data["scale"])
        if len(center) != 3 or not np.all(np.isfinite(center)) or not np.isfinite(scale) or scale <= 0:
            raise SdfkitError("invalid normalisation transform (need 3 finite centre values and a positive scale)")
        return cls(center=center, scale=scale)  # type: ignore[arg-type]


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), used to tell whether outputs are stale."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path) -> tuple[trimesh.Trimesh, bytes]:
    """The raw mesh of ``path`` and the file's bytes, read from disk in one go."""
    if not path.exists():
        raise SdfkitError(f"mesh file not found: {path}")
    if path.is_dir():
        raise SdfkitError(f"expected a mesh file, got a directory: {path}")
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise SdfkitError(f"unsupported mesh format '{path.suffix}' for {path} (supported: {', '.join(MESH_SUFFIXES)})")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise SdfkitError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise SdfkitError(f"cannot read {path}: {exc.strerror}") from None
    if not data:
        raise SdfkitError(f"mesh file is empty (0 bytes): {path}")
    try:
        # From memory: the file is opened once; a glTF's side files are found beside it.
        loaded = trimesh.load(io.BytesIO(data), file_type=suffix[1:], force="mesh", process=False,
                              skip_materials=True, resolver=FilePathResolver(str(path)))
    except Exception as exc:  # trimesh raises many exception types for bad files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise SdfkitError(f"cannot read mesh {path}: {reason}") from None
    if isinstance(loaded, trimesh.Scene):  # force="mesh" leaves an empty scene as a Scene
        geoms = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh)] if loaded.geometry else []
        loaded = trimesh.util.concatenate(geoms) if geoms else trimesh.Trimesh()
    if not isinstance(loaded, trimesh.Trimesh):
        raise SdfkitError(f"cannot read mesh {path}: it holds no triangle mesh ({type(loaded).__name__})")
    if len(loaded.faces) == 0 and suffix == ".ply" and b"element tristrips" in _ply_header(data):
        raise SdfkitError(f"cannot read mesh {path}: PLY triangle strips are not supported (convert to faces)")
    return loaded, data


def _ply_header(data: bytes) -> bytes:
    return data[: 1 << 16].split(b"end_header", 1)[0]


def clean_mesh(mesh: trimesh.Trimesh, name: str = "mesh") -> trimesh.Trimesh:
    """Validate and repair a triangle mesh for SDF work.

    Rejects (with :class:`SdfkitError`) meshes with no faces, NaN or infinite
    coordinates, or no volume (all vertices on a plane or a line). Merges
    vertices split by UV or normal seams, drops zero-area and duplicated faces
    and unreferenced vertices, and flips a closed mesh whose signed volume is
    negative (inverted orientation) so that normals face outwards.
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0 or len(vertices) == 0:
        raise SdfkitError(f"{name} has no faces (empty mesh or point cloud)")
    if not np.all(np.isfinite(vertices)):
        bad = int((~np.isfinite(vertices)).any(axis=1).sum())
        raise SdfkitError(f"{name} has {bad} vertices with NaN or infinite coordinates")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= len(vertices):
        raise SdfkitError(f"{name} has invalid face indices")
    used = vertices[np.unique(faces)]
    centered = used - used.mean(axis=0)
    sv = np.linalg.svd(centered[:: max(1, len(centered) // 200_000)], compute_uv=False)
    if sv[0] <= 0 or sv[-1] <= FLAT_TOLERANCE * sv[0]:
        raise SdfkitError(f"{name} is flat (all vertices on a plane or line): it has no inside")

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    # Positions at UV/normal seams coincide exactly; merging them restores
    # connectivity so watertightness and orientation can be judged.
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    mesh.update_faces(mesh.nondegenerate_faces(height=None))  # pyright: ignore[reportArgumentType]  (None: by area)
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0:
        raise SdfkitError(f"{name} has only degenerate (zero-area) faces")
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read any mesh trimesh reads (scenes flattened) and :func:`clean_mesh` it.

    Parameters
    ----------
    path : path to an .obj, .ply, .stl, .off, .glb or .gltf file.

    Returns
    -------
    mesh : trimesh.Trimesh, in the input's own units.
    """
    return read_mesh(path)[0]


def read_mesh(path: str | Path) -> tuple[trimesh.Trimesh, str]:
    """:func:`load_mesh` and the SHA-256 of the file's bytes, from a single read of the file.

    Returns (mesh in the input's own units, hex digest equal to :func:`file_hash`).
    """
    path = Path(path)
    raw, data = _read(path)
    return clean_mesh(raw, name=str(path)), hashlib.sha256(data).hexdigest()


def fit_normalization(mesh: trimesh.Trimesh, radius: float = 1.0) -> Normalization:
    """Transform putting the bounding-box centre at the origin and the farthest vertex at ``radius``."""
    if not 0 < radius:
        raise SdfkitError(f"normalisation radius must be positive, got {radius}")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    center = (vertices.min(axis=0) + vertices.max(axis=0)) / 2.0
    farthest = float(np.linalg.norm(vertices - center, axis=1).max())
    if not np.isfinite(farthest) or farthest <= 0:
        raise SdfkitError("mesh has zero extent")
    return Normalization(center=tuple(float(c) for c in center), scale=farthest / radius)  # type: ignore[arg-type]


def normalize_mesh(mesh: trimesh.Trimesh, radius: float = 1.0) -> tuple[trimesh.Trimesh, Normalization]:
    """Copy of ``mesh`` in the normalised frame, and the transform that put it there."""
    norm = fit_normalization(mesh, radius)
    unit = trimesh.Trimesh(vertices=norm.to_unit(mesh.vertices), faces=np.asarray(mesh.faces), process=False)
    return unit, norm


def find_meshes(folder: str | Path) -> list[Path]:
    """Every mesh file under ``folder`` (recursively), sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
