"""Whole datasets: a mesh, a folder of meshes, or a ShapeNet-layout root -> one ``.npz`` per shape.

Parallel over shapes, resumable (a shape whose output exists with the same mesh
hash, settings and format version is skipped), and tolerant: one bad mesh is
reported in the summary and does not stop the others. ``shard="i/n"`` splits
the work so any scheduler can run shards on different machines;
:func:`combine_shards` merges their split files and manifests (the last shard to finish calls it).

Layout and split files follow DeepSDF: a split file maps
``{dataset: {class: [instance, ...]}}`` and a shape's samples live at
``<out>/<class>/<instance>.npz``. For a ShapeNet root the dataset is
``ShapeNetV2``, the class the synset and the instance the model id. For a
plain folder the dataset is the folder's name, the class is the mesh's
sub-folder relative to it (``.`` for files at its top) and the instance the
file stem, so ``<folder>/bunny.obj`` gives ``<out>/bunny.npz``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from data_prep.errors import SdfkitError
from data_prep.files import atomic_write_text
from data_prep.forked import default_workers
from data_prep.manifest import (
    ManifestRow,
    failed_row,
    inspect_shape,
    read_manifest,
    rejection,
    row_from_json,
    sign_conflicts,
    write_manifest,
)
from data_prep.mesh import MESH_SUFFIXES, file_hash, find_meshes, load_mesh, normalize_mesh, read_mesh
from data_prep.points import POINT_SUFFIXES, PointsConfig, is_point_cloud, points_settings, prepare_points
from data_prep.sampling import FORMAT_VERSION, SamplingConfig, SdfSamples, config_settings, sample_unit_mesh

#: Where a ShapeNet (v2) model's mesh lies below ``<root>/<synset>/<model>/``.
SHAPENET_MESH = Path("models") / "model_normalized.obj"

#: Dataset name in split files of ShapeNet roots (as in DeepSDF's examples).
SHAPENET_DATASET = "ShapeNetV2"

#: Class of meshes at the top of a plain folder.
TOP_CLASS = "."


@dataclasses.dataclass(frozen=True)
class Shape:
    """One mesh of a dataset, named as in DeepSDF split files.

    path : the mesh file; dataset : ``ShapeNetV2`` or the folder's name;
    group : the class (synset, or sub-folder, ``.`` at the top);
    name : the instance (model id, or file stem).
    """

    path: Path
    group: str
    name: str
    dataset: str = ""

    @property
    def output_name(self) -> str:
        """Output path relative to the output folder, POSIX style."""
        return str(PurePosixPath(self.group) / f"{self.name}.npz")


@dataclasses.dataclass
class PrepSummary:
    """What a :func:`prep_dataset` run did; ``failed`` maps a mesh (or split entry) to its one-line reason."""

    written: list[str]
    skipped: list[str]
    failed: dict[str, str]
    split_file: Path | None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    """Wall time per output name (written shapes only)."""
    rejected: dict[str, str] = dataclasses.field(default_factory=dict)
    """Shapes sampled but left out of the split file, and why (:mod:`data_prep.manifest`)."""
    combined: list[Path] = dataclasses.field(default_factory=list)
    """The merged ``split.json`` and manifest, written by the last shard to finish (:func:`combine_shards`)."""

    @property
    def ok(self) -> bool:
        return not self.failed


def _is_shapenet(root: Path) -> bool:
    return any(root.glob(f"*/*/{SHAPENET_MESH}"))


def list_shapes(path: str | Path, synsets: list[str] | None = None) -> list[Shape]:
    """The shapes under ``path`` (a mesh, a folder of meshes, or a ShapeNet root), sorted by output name.

    ``synsets`` keeps only those ShapeNet synsets (an error for plain folders).
    Raises :class:`SdfkitError` when nothing is found or two meshes would
    write the same output.
    """
    path = Path(path)
    if not path.exists():
        raise SdfkitError(f"not found: {path}")
    if path.is_file():
        if path.suffix.lower() not in MESH_SUFFIXES + POINT_SUFFIXES:
            raise SdfkitError(f"unsupported mesh format '{path.suffix}' for {path} "
                              f"(supported: {', '.join(MESH_SUFFIXES + POINT_SUFFIXES)})")
        return [Shape(path, TOP_CLASS, path.stem, path.resolve().parent.name or "meshes")]
    if _is_shapenet(path):
        shapes = [Shape(p, p.parents[2].name, p.parents[1].name, SHAPENET_DATASET)
                  for p in sorted(path.glob(f"*/*/{SHAPENET_MESH}"))]
        if synsets:
            known = {s.group for s in shapes}
            unknown = [s for s in synsets if s not in known]
            if unknown:
                raise SdfkitError(f"synset '{unknown[0]}' not found in {path} (present: {', '.join(sorted(known))})")
            shapes = [s for s in shapes if s.group in set(synsets)]
    else:
        if synsets:
            raise SdfkitError(f"--synsets applies to ShapeNet roots (<synset>/<model>/{SHAPENET_MESH.as_posix()}); "
                              f"{path} is a plain folder")
        dataset = path.resolve().name or "meshes"
        shapes = []
        for p in find_meshes(path):
            rel = PurePosixPath(p.relative_to(path).as_posix())
            shapes.append(Shape(p, str(rel.parent) if str(rel.parent) != "." else TOP_CLASS, rel.stem, dataset))
    if not shapes:
        raise SdfkitError(f"no meshes found in {path} (looked for {', '.join(MESH_SUFFIXES)})")
    shapes.sort(key=lambda s: s.output_name)
    for a, b in zip(shapes, shapes[1:]):
        if a.output_name == b.output_name:
            raise SdfkitError(f"{a.path} and {b.path} would both write {a.output_name}; rename one")
    return shapes


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise SdfkitError(f"--shard must look like i/n (e.g. 0/4), got '{text}'") from None
    if not (n >= 1 and 0 <= i < n):
        raise SdfkitError(f"--shard i/n needs 0 <= i < n, got '{text}'")
    return i, n


def shard_shapes(shapes: list[Shape], shard: str | None) -> list[Shape]:
    """Shard ``i/n`` of ``shapes``: those whose index in the sorted list is ``i`` modulo ``n``."""
    i, n = parse_shard(shard)
    return [s for k, s in enumerate(shapes) if k % n == i]


def read_split(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """Read a DeepSDF-style split file ``{dataset: {class: [instance, ...]}}``."""
    path = Path(path)
    if not path.is_file():
        raise SdfkitError(f"split file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SdfkitError(f"cannot parse split file {path}: {str(exc).splitlines()[0][:120]}") from None
    valid = isinstance(data, dict) and all(
        isinstance(groups, dict) and all(isinstance(names, list) and all(isinstance(n, str) for n in names)
                                         for names in groups.values())
        for groups in data.values())
    if not valid:
        raise SdfkitError(f"split file {path} must map dataset -> class -> list of instance names")
    return data


def split_of(shapes: list[Shape]) -> dict[str, dict[str, list[str]]]:
    """The split file content listing ``shapes``."""
    split: dict[str, dict[str, list[str]]] = {}
    for s in shapes:
        split.setdefault(s.dataset, {}).setdefault(s.group, []).append(s.name)
    return {d: {g: sorted(n) for g, n in sorted(groups.items())} for d, groups in sorted(split.items())}


def select_split(shapes: list[Shape], split: dict[str, dict[str, list[str]]]) -> tuple[list[Shape], list[str]]:
    """The shapes a split lists (any dataset key), and the listed entries not found, as ``class/instance``."""
    wanted = {(g, n) for groups in split.values() for g, names in groups.items() for n in names}
    have = {(s.group, s.name) for s in shapes}
    missing = sorted(str(PurePosixPath(g) / n) for g, n in wanted - have)
    return [s for s in shapes if (s.group, s.name) in wanted], missing


def is_current(out: Path, mesh_hash: str, settings: dict) -> bool:
    """Whether ``out`` holds samples of this mesh file with these settings (a damaged file is not current)."""
    try:
        with np.load(out, allow_pickle=False) as data:
            return (int(data["format_version"]) == FORMAT_VERSION and str(data["mesh_hash"]) == mesh_hash
                    and json.loads(str(data["settings"])) == settings and len(data["points"]) == settings["num_points"])
    except Exception:  # any unreadable file is simply resampled
        return False


def prep_shape(shape: Shape, out_dir: Path, config: SamplingConfig, force: bool = False, workers: int = 1,
               known: dict | None = None) -> tuple[str, str, float, ManifestRow]:
    """Sample one shape into ``out_dir``: ("written" | "skipped" | "failed", reason, seconds, manifest row).

    known : the shape's row of an earlier manifest, reused when its samples are current.
    Never raises for a bad mesh: its one-line reason is returned instead.
    """
    start = time.perf_counter()
    out = out_dir / shape.output_name
    try:
        if is_point_cloud(shape.path):
            return _prep_cloud(shape, out, config, force, start)
        if not force and out.is_file():
            if not is_current(out, file_hash(shape.path), config_settings(config)):
                # sdfkit's overwrite rule: samples of another mesh or settings are replaced only with --force.
                reason = (f"{out} already exists with samples of another mesh file or other settings "
                          "(pass --force to replace it)")
                return "failed", reason, 0.0, failed_row(shape.output_name, shape.path, reason)
            try:
                row = row_from_json(known) if known else None
            except (TypeError, KeyError):  # a row of another manifest version
                row = None
            if row is None or row.mesh != str(shape.path):
                row = _manifest_row(shape, SdfSamples.load(out), config)
            return "skipped", "", 0.0, row
        # One read of the mesh serves the samples and the manifest's figures.
        mesh, digest = read_mesh(shape.path)
        unit, norm = normalize_mesh(mesh, config.radius)
        samples = sample_unit_mesh(unit, norm, config, str(shape.path.resolve()), digest, workers)
        samples.save(out)
        row = inspect_shape(shape.output_name, shape.path, unit, samples.points, samples.sdf, norm, config.method,
                            config.seed)
        return "written", "", time.perf_counter() - start, row
    except SdfkitError as exc:
        reason = str(exc)
    except MemoryError:
        reason = "out of memory"
    except Exception as exc:  # a library failing on one odd mesh must not stop the dataset
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        reason = f"{type(exc).__name__}: {text}"
    return "failed", reason, time.perf_counter() - start, failed_row(shape.output_name, shape.path, reason)


def _prep_cloud(shape: Shape, out: Path, config: SamplingConfig, force: bool,
                start: float) -> tuple[str, str, float, ManifestRow]:
    """A point cloud's samples (:mod:`data_prep.points`, normals as the file gives them, else estimated) and its
    manifest row: its points, frame, the samples' sign conflicts and the winding number's ambiguous share."""
    points = PointsConfig()
    if not force and out.is_file() and is_current(out, file_hash(shape.path), points_settings(config, points)):
        samples = SdfSamples.load(out)
        conflicts, ambiguous = sign_conflicts(samples.points[:20_000], samples.sdf[:20_000]), float("nan")
        status, seconds = "skipped", 0.0
    else:
        samples, info, _ = prepare_points(shape.path, config, points)
        samples.save(out)
        conflicts = sign_conflicts(samples.points[:20_000], samples.sdf[:20_000])
        ambiguous = float(info["sign_trust"]["ambiguous"])
        status, seconds = "written", time.perf_counter() - start
    cx, cy, cz = (float(c) for c in samples.normalization.center)
    reason = rejection(conflicts, ambiguous if ambiguous == ambiguous else 0.0)
    row = ManifestRow(shape=shape.output_name, mesh=str(shape.path), vertices=len(samples.surface_points),
                      center=(cx, cy, cz), scale=float(samples.normalization.scale),
                      sign_method="point-cloud winding number", sign_conflicts=conflicts, winding_ambiguous=ambiguous,
                      rejected=bool(reason), reason=reason)
    return status, "", seconds, row


def _manifest_row(shape: Shape, samples: SdfSamples, config: SamplingConfig) -> ManifestRow:
    mesh = load_mesh(shape.path)
    mesh.vertices = samples.normalization.to_unit(mesh.vertices)
    return inspect_shape(shape.output_name, shape.path, mesh, samples.points, samples.sdf, samples.normalization,
                         config.method, config.seed)


def _job(args) -> tuple[str, str, float, ManifestRow]:
    return prep_shape(*args)


class _SilentStage:
    def update(self, **_: Any) -> None:
        pass


@contextlib.contextmanager
def _stage(progress: Any, total: int) -> Iterator[Any]:
    """The ``prep`` stage on the caller's reporter, or one that shows nothing."""
    if not progress:
        yield _SilentStage()
        return
    with progress.stage("prep", total, unit="shape") as stage:
        yield stage


def prep_dataset(path: str | Path, out_dir: str | Path, config: SamplingConfig, workers: int | None = None,
                 synsets: list[str] | None = None, shard: str | None = None, force: bool = False,
                 progress: Any = None, split: str | Path | None = None) -> PrepSummary:
    """Sample every shape under ``path`` into ``out_dir`` and write its split file.

    Parameters
    ----------
    path : a mesh, a folder of meshes (searched recursively), or a ShapeNet root.
    out_dir : output folder; ``<out>/<class>/<instance>.npz`` per shape.
    config : sampling settings.
    workers : processes (default: all cores). Several shapes are spread over
        processes; a single shape splits its distance queries instead.
    synsets : ShapeNet synsets to keep.
    shard : ``"i/n"``: only shapes whose sorted index is ``i`` mod ``n``; the
        split file and manifest are then ``split.shard-i-of-n.json`` and ``manifest.shard-i-of-n.csv/json``,
        and the shard that finishes last merges every shard's into ``split.json`` and ``manifest.csv/json``.
    force : resample shapes that already have samples (without it, current samples are kept and samples of
        another mesh file or other settings are reported as failed, not replaced).
    progress : a reporter whose ``stage(name, total, unit=...)`` shows the shapes done (the CLI passes a
        :class:`sdfkit.progress.Reporter`; this layer imports none), or None or False: silent.
    split : a split file; only the shapes it lists are prepared (entries
        not found are reported as failed).

    Returns
    -------
    PrepSummary; the split file lists the shapes that have samples.
    """
    out_dir = Path(out_dir)
    shapes = list_shapes(path, synsets)
    missing: list[str] = []
    if split is not None:
        shapes, missing = select_split(shapes, read_split(split))
    shard_i, shard_n = parse_shard(shard)
    shapes = shard_shapes(shapes, shard)
    workers = max(1, workers or default_workers())
    results: dict[Shape, tuple[str, str, float, ManifestRow]] = {}
    known = read_manifest(out_dir) if shard_n == 1 else read_manifest(out_dir, _shard_suffix(shard_i, shard_n))
    with _stage(progress, len(shapes)) as stage:
        if workers == 1 or len(shapes) <= 1:
            for shape in shapes:
                stage.update(note=shape.output_name)
                results[shape] = prep_shape(shape, out_dir, config, force, workers, known.get(shape.output_name))
                stage.update(advance=1)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(shapes))) as pool:
                futures = {pool.submit(_job, (s, out_dir, config, force, 1, known.get(s.output_name))): s
                           for s in shapes}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    stage.update(advance=1, note=futures[future].output_name)
    # A rejected shape keeps its samples on disk but is left out of the split file: training and fits skip it.
    done = [s for s in shapes if results[s][0] != "failed" and not results[s][3].rejected]
    split_file = None
    suffix = "" if shard_n == 1 else _shard_suffix(shard_i, shard_n)
    if done:
        split_file = out_dir / f"split{suffix}.json"
        atomic_write_text(split_file, json.dumps(split_of(done), indent=2) + "\n")
    # A run where every shape failed writes nothing: its one-line errors are the whole answer.
    if any(results[s][0] != "failed" for s in shapes):
        write_manifest(out_dir, [results[s][3] for s in shapes], suffix)
    combined: list[Path] = []
    if shard_n > 1:
        try:
            _finished_shards(out_dir)
        except SdfkitError:
            pass  # other shards have not finished: the last one to finish combines
        else:
            combined = combine_shards(out_dir)
    failed = {str(s.path): results[s][1] for s in shapes if results[s][0] == "failed"}
    failed.update({entry: "listed in the split file but not found" for entry in missing})
    return PrepSummary(
        written=[s.output_name for s in shapes if results[s][0] == "written"],
        skipped=[s.output_name for s in shapes if results[s][0] == "skipped"],
        failed=failed,
        split_file=split_file,
        seconds={s.output_name: results[s][2] for s in shapes if results[s][0] == "written"},
        rejected={s.output_name: results[s][3].reason for s in shapes
                  if results[s][0] != "failed" and results[s][3].rejected},
        combined=combined,
    )


def _shard_suffix(i: int, n: int) -> str:
    return f".shard-{i}-of-{n}"


def _shard_files(out_dir: Path, kind: str) -> dict[tuple[int, int], Path]:
    """``{(i, n): path}`` of the ``<kind>.shard-i-of-n.json`` files in ``out_dir`` (kind: split or manifest)."""
    found = {}
    for p in sorted(out_dir.glob(f"{kind}.shard-*-of-*.json")):
        match = re.fullmatch(rf"{kind}\.shard-(\d+)-of-(\d+)\.json", p.name)
        if match:
            found[(int(match[1]), int(match[2]))] = p
    return found


def _finished_shards(out_dir: Path) -> tuple[int, dict[tuple[int, int], Path], dict[tuple[int, int], Path]]:
    """(n, split files, manifest files) of the shards in ``out_dir``; a shard has finished when it wrote either.

    Raises :class:`SdfkitError` when there are none, when they come from different shard counts, or when a
    shard has not finished.
    """
    splits, manifests = _shard_files(out_dir, "split"), _shard_files(out_dir, "manifest")
    finished = set(splits) | set(manifests)
    if not finished:
        raise SdfkitError(f"no shard split files (split.shard-i-of-n.json) in {out_dir}")
    counts = sorted({n for _, n in finished})
    if len(counts) != 1:
        raise SdfkitError(f"shard split files in {out_dir} come from different shard counts "
                          f"({', '.join(map(str, counts))})")
    n = counts[0]
    absent = sorted(set(range(n)) - {i for i, _ in finished})
    if absent:
        missing = ", ".join(f"{i}/{n}" for i in absent)
        raise SdfkitError(f"shard split files missing in {out_dir}: shard {missing} has not finished")
    return n, splits, manifests


def combine_shards(out_dir: str | Path) -> list[Path]:
    """Merge the shards' files in ``out_dir``: ``split.shard-*-of-*.json`` into ``split.json`` and
    ``manifest.shard-*-of-*.json`` into ``manifest.csv`` / ``manifest.json`` (one row per shape of every shard).

    Returns the paths written. Raises :class:`SdfkitError` unless every shard of one count has finished.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise SdfkitError(f"not a folder: {out_dir}")
    _, splits, manifests = _finished_shards(out_dir)
    written = []
    if splits:  # a shard whose shapes were all rejected lists none
        merged: dict[str, dict[str, set[str]]] = {}
        for part in splits.values():
            for dataset, groups in read_split(part).items():
                for group, names in groups.items():
                    merged.setdefault(dataset, {}).setdefault(group, set()).update(names)
        path = out_dir / "split.json"
        content = {d: {g: sorted(n) for g, n in sorted(groups.items())} for d, groups in sorted(merged.items())}
        atomic_write_text(path, json.dumps(content, indent=2) + "\n")
        written.append(path)
    if manifests:
        rows: dict[str, ManifestRow] = {}
        for (i, n) in sorted(manifests):
            shard_rows = read_manifest(out_dir, _shard_suffix(i, n))
            if not shard_rows:
                raise SdfkitError(f"cannot read {manifests[(i, n)]}; rerun shard {i}/{n}")
            try:
                rows.update({shape: row_from_json(row) for shape, row in shard_rows.items()})
            except (TypeError, KeyError):
                raise SdfkitError(f"{manifests[(i, n)]} is of another sdfkit version; rerun shard {i}/{n}") from None
        write_manifest(out_dir, [rows[shape] for shape in sorted(rows)])
        written += [out_dir / "manifest.csv", out_dir / "manifest.json"]
    return written
