"""What a data entry names: a mesh, a folder, a glob pattern, a prep output folder or a split file -> shapes.

Used by ``train.data`` and by ``sdfkit fit FOLDER_OR_SPLIT``. An entry is one of

- a mesh file (obj, ply, stl, off, glb, gltf) or a samples file (``.npz`` from ``sdfkit prep``);
- a folder of meshes, searched recursively (a ShapeNet root too), as ``sdfkit prep`` lists it;
- a *prep output folder* (it holds ``split.json`` beside ``<class>/<instance>.npz``): its samples;
- a glob pattern (``meshes/airplanes/*/*.ply``), relative to ``base``; every match is itself an entry;
- a split file, ``{dataset: {class: [instance, ...]}}`` (DeepSDF's, or the ``split.json`` sdfkit prep writes).
  Each entry is looked up relative to the split file's folder, first match wins:
  ``<class>/<instance>.npz`` (prep output), ``<class>/<instance>/models/model_normalized.obj`` (ShapeNet),
  ``<class>/<instance>.<mesh suffix>``; class ``.`` is the folder itself.

Every shape keeps its DeepSDF name (class, instance), which later stages use for output folders.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from data_prep.dataset import SHAPENET_MESH, TOP_CLASS, Shape, list_shapes, read_split
from data_prep.errors import SdfkitError
from data_prep.mesh import MESH_SUFFIXES

#: Characters that make an entry a glob pattern.
GLOB_CHARS = "*?["
SAMPLES_SUFFIX = ".npz"
#: The split file a prep output folder holds.
PREP_SPLIT = "split.json"


def is_prep_output(folder: Path) -> bool:
    """Whether ``folder`` was written by ``sdfkit prep`` (a split file beside samples files)."""
    return (folder / PREP_SPLIT).is_file() and any(folder.rglob(f"*{SAMPLES_SUFFIX}"))


def _split_entry(root: Path, group: str, name: str) -> Path | None:
    folder = root if group == TOP_CLASS else root / group
    candidates = [folder / f"{name}{SAMPLES_SUFFIX}", folder / name / SHAPENET_MESH]
    candidates += [folder / f"{name}{suffix}" for suffix in MESH_SUFFIXES]
    return next((c for c in candidates if c.is_file()), None)


def split_shapes(path: str | Path) -> list[Shape]:
    """The shapes a split file lists, found relative to its folder (see the module docstring)."""
    path = Path(path)
    shapes, missing = [], []
    for dataset, groups in read_split(path).items():
        for group, names in groups.items():
            for name in names:
                found = _split_entry(path.parent, group, name)
                if found is None:
                    missing.append(f"{group}/{name}")
                else:
                    shapes.append(Shape(found, group, name, dataset))
    if missing:
        raise SdfkitError(f"{path}: {len(missing)} listed shape(s) not found beside it, first {missing[0]} "
                          f"(looked for .npz, ShapeNet's {SHAPENET_MESH.as_posix()} and mesh files)")
    if not shapes:
        raise SdfkitError(f"{path}: the split file lists no shapes")
    return shapes


def resolve_shapes(entry: str | Path, base: str | Path | None = None) -> list[Shape]:
    """The shapes one data entry names, in a stable order; one-line :class:`SdfkitError` when it names none.

    base : the folder relative entries are read from (default: the working folder).
    """
    text = str(entry)
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if any(ch in text for ch in GLOB_CHARS):
        matches = sorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise SdfkitError(f"no file matches {text}")
        return [shape for match in matches for shape in resolve_shapes(match)]
    if not path.exists():
        raise SdfkitError(f"not found: {path}")
    if path.is_dir():
        if is_prep_output(path):
            return split_shapes(path / PREP_SPLIT)
        return list_shapes(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return split_shapes(path)
    if suffix == SAMPLES_SUFFIX:
        return [Shape(path, TOP_CLASS, path.stem, path.resolve().parent.name)]
    return list_shapes(path)


def resolve_data(entries: list[str] | str, base: str | Path | None = None) -> list[Path]:
    """Files (meshes or ``.npz`` samples) named by ``entries``, each once, in order of first mention."""
    entries = [entries] if isinstance(entries, (str, Path)) else entries
    seen: dict[Path, None] = {}
    for entry in entries:
        for shape in resolve_shapes(entry, base):
            seen.setdefault(shape.path, None)
    return list(seen)


def source_mesh(path: str | Path) -> Path:
    """The mesh a file stands for: itself, or for a prep ``.npz`` the mesh it was sampled from."""
    path = Path(path)
    if path.suffix.lower() != SAMPLES_SUFFIX:
        return path
    try:
        with np.load(path, allow_pickle=False) as data:
            source = str(data["source"])
    except Exception as exc:  # zipfile and numpy raise many types for damaged files
        raise SdfkitError(f"cannot read samples {path}: {type(exc).__name__}") from None
    mesh = Path(source.split("#", 1)[0])
    if not mesh.is_file():
        raise SdfkitError(f"{path}: its source mesh {mesh} is not found")
    return mesh
