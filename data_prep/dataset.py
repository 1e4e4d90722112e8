"""Whole datasets: a mesh, a folder of meshes, or a ShapeNet-layout root -> one ``.npz`` per shape.

Parallel over shapes, resumable (a shape whose output exists with the same mesh
hash and settings is skipped), and tolerant: one bad mesh is reported in the
summary and does not stop the others. ``--shard i/n`` splits the work so any
scheduler can run shards on different machines; :func:`combine_shards` merges
their split files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from data_prep.mesh import MESH_SUFFIXES, file_hash, find_meshes
from data_prep.sampling import SamplingConfig, SdfSamples, prepare_mesh
from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_write_text

SHAPENET_MESH = Path("models") / "model_normalized.obj"


@dataclasses.dataclass(frozen=True)
class Shape:
    """One mesh of a dataset: its ``group`` (synset or dataset name) and ``name`` (model id or relative stem)."""

    path: Path
    group: str
    name: str

    @property
    def output_name(self) -> str:
        return f"{self.group}/{self.name}.npz"


@dataclasses.dataclass
class PrepSummary:
    written: list[str]
    skipped: list[str]
    failed: dict[str, str]
    split_file: Path | None


def list_shapes(path: str | Path, synsets: list[str] | None = None) -> list[Shape]:
    """The shapes under ``path`` (a mesh, a folder of meshes, or a ShapeNet root), sorted."""
    path = Path(path)
    if not path.exists():
        raise SdfkitError(f"not found: {path}")
    if path.is_file():
        if path.suffix.lower() not in MESH_SUFFIXES:
            raise SdfkitError(f"unsupported mesh format '{path.suffix}' for {path}")
        return [Shape(path, path.parent.name or "meshes", path.stem)]
    shapenet = sorted(path.glob(f"*/*/{SHAPENET_MESH}"))
    if shapenet:
        shapes = [Shape(p, p.parents[2].name, p.parents[1].name) for p in shapenet]
        if synsets:
            shapes = [s for s in shapes if s.group in set(synsets)]
    else:
        shapes = [Shape(p, path.name, str(p.relative_to(path).with_suffix("")).replace(os.sep, "__")) for p in find_meshes(path)]
    if not shapes:
        raise SdfkitError(f"no meshes found in {path} (looked for {', '.join(MESH_SUFFIXES)})")
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


def _is_current(out: Path, mesh_hash: str, settings: dict) -> bool:
    try:
        with np.load(out, allow_pickle=False) as data:
            return str(data["mesh_hash"]) == mesh_hash and json.loads(str(data["settings"])) == settings
    except Exception:
        return False


def _prep_one(shape: Shape, out_dir: Path, config: SamplingConfig, force: bool) -> tuple[str, str]:
    out = out_dir / shape.output_name
    settings = json.loads(json.dumps(dataclasses.asdict(config)))
    if not force and out.is_file() and _is_current(out, file_hash(shape.path), settings):
        return "skipped", ""
    samples: SdfSamples = prepare_mesh(shape.path, config)
    samples.save(out)
    return "written", ""


def _job(args) -> tuple[str, str]:
    shape, out_dir, config, force = args
    try:
        return _prep_one(shape, out_dir, config, force)
    except SdfkitError as exc:
        return "failed", str(exc)
    except MemoryError:
        return "failed", "out of memory"


def prep_dataset(path: str | Path, out_dir: str | Path, config: SamplingConfig, workers: int | None = None,
                 synsets: list[str] | None = None, shard: str | None = None, force: bool = False,
                 progress: bool = True) -> PrepSummary:
    """Sample every shape under ``path`` into ``out_dir``; write a DeepSDF-style split file."""
    out_dir = Path(out_dir)
    shard_i, shard_n = parse_shard(shard)
    shapes = [s for k, s in enumerate(list_shapes(path, synsets)) if k % shard_n == shard_i]
    workers = max(1, min(workers or os.cpu_count() or 1, len(shapes) or 1))
    results: dict[Shape, tuple[str, str]] = {}
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]prep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not progress)
    with bar:
        task = bar.add_task("prep", total=len(shapes))
        jobs = [(s, out_dir, config, force) for s in shapes]
        if workers == 1:
            for job in jobs:
                results[job[0]] = _job(job)
                bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_job, job): job[0] for job in jobs}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.advance(task)
    done = [s for s in shapes if results[s][0] != "failed"]
    split_name = "split.json" if shard_n == 1 else f"split.shard-{shard_i}-of-{shard_n}.json"
    groups: dict[str, list[str]] = {}
    for s in done:
        groups.setdefault(s.group, []).append(s.name)
    split_file = None
    if done:
        split_file = out_dir / split_name
        atomic_write_text(split_file, json.dumps({"sdfkit": {g: sorted(v) for g, v in sorted(groups.items())}}, indent=2) + "\n")
    return PrepSummary(
        written=[s.output_name for s in shapes if results[s][0] == "written"],
        skipped=[s.output_name for s in shapes if results[s][0] == "skipped"],
        failed={str(s.path): results[s][1] for s in shapes if results[s][0] == "failed"},
        split_file=split_file,
    )


def combine_shards(out_dir: str | Path) -> Path:
    """Merge ``split.shard-*-of-*.json`` in ``out_dir`` into one ``split.json``."""
    out_dir = Path(out_dir)
    parts = sorted(out_dir.glob("split.shard-*-of-*.json"))
    if not parts:
        raise SdfkitError(f"no shard split files in {out_dir}")
    merged: dict[str, dict[str, list[str]]] = {}
    for part in parts:
        for dataset, groups in json.loads(part.read_text()).items():
            for group, names in groups.items():
                merged.setdefault(dataset, {}).setdefault(group, [])
                merged[dataset][group] = sorted(set(merged[dataset][group]) | set(names))
    path = out_dir / "split.json"
    atomic_write_text(path, json.dumps(merged, indent=2) + "\n")
    return path
