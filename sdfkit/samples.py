"""Getting SDF samples for the method: from prepared files or straight from meshes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sdfkit.errors import SdfkitError
from sdfkit.settings import SamplingSection


def sampling_config(section: SamplingSection, seed: int = 0):
    """The preprocessing settings a method config asks for (preset, then overrides)."""
    from data_prep.sampling import sampling_preset

    cfg = sampling_preset(section.preset)
    changes = {"seed": seed}
    if section.num_points is not None:
        changes["num_points"] = section.num_points
    if section.volume is not None:
        changes["volume"] = section.volume
    return dataclasses.replace(cfg, **changes)


def random_rotation(seed: int) -> np.ndarray:
    """(3, 3) rotation drawn uniformly (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _cache_key(path: Path, cfg, rotation: int) -> str:
    from data_prep.mesh import file_hash

    blob = file_hash(path) + json.dumps(dataclasses.asdict(cfg), sort_keys=True) + f"rot{rotation}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _rotated_samples(path: Path, cfg, rotation: int):
    """Samples of ``path`` turned by random rotation number ``rotation`` (0: unrotated)."""
    from data_prep.sampling import SdfSamples, prepare_mesh, sample_mesh
    from data_prep.mesh import file_hash, load_mesh, normalize_mesh

    if rotation == 0:
        return prepare_mesh(path, cfg)
    mesh = load_mesh(path)
    mesh.vertices = np.asarray(mesh.vertices) @ random_rotation(rotation).T
    unit, norm = normalize_mesh(mesh)
    points, sdf, surface_points, surface_normals = sample_mesh(unit, cfg)
    return SdfSamples(
        points=points, sdf=sdf, surface_points=surface_points, surface_normals=surface_normals,
        normalization=norm, source=f"{path.resolve()}#rotation{rotation}", mesh_hash=file_hash(path),
        settings={**dataclasses.asdict(cfg), "rotation": rotation},
    )


def load_or_prepare(path: str | Path, section: SamplingSection, cache_dir: Path | None = None, seed: int = 0, rotation: int = 0):
    """``SdfSamples`` for ``path``: a prepared ``.npz``, or a mesh sampled now (cached in ``cache_dir``).

    ``rotation`` > 0 samples the mesh turned by a random rotation seeded by it (augmentation).
    """
    from data_prep.sampling import SdfSamples

    path = Path(path)
    if path.suffix.lower() == ".npz":
        return SdfSamples.load(path)
    if not path.exists():
        raise SdfkitError(f"mesh file not found: {path}")
    cfg = sampling_config(section, seed)
    if cache_dir is None:
        return _rotated_samples(path, cfg, rotation)
    cached = Path(cache_dir) / f"{path.stem}-r{rotation}-{_cache_key(path, cfg, rotation)}.npz"
    if cached.is_file():
        try:
            return SdfSamples.load(cached)
        except SdfkitError:
            cached.unlink(missing_ok=True)  # a damaged cache entry is rebuilt
    samples = _rotated_samples(path, cfg, rotation)
    samples.save(cached)
    return samples


def _load_job(args):
    return load_or_prepare(*args)


def load_many(items: list[tuple[str, int, int]], section: SamplingSection, cache_dir: Path, workers: int | None = None) -> list:
    """Samples for many (path, seed, rotation) items, prepared in parallel processes and cached."""
    jobs = [(path, section, cache_dir, seed, rotation) for path, seed, rotation in items]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [_load_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_load_job, jobs))


def prepare_cloud(path: str | Path, section: SamplingSection, seed: int = 0, normals: str = "auto"):
    """Samples of the point cloud at ``path`` (:mod:`data_prep.points`), read once.

    Returns
    -------
    samples : ``SdfSamples``, laid out as a mesh's.
    cloud : the ``PointCloud`` as read, in the input's units (what the fit is scored against).
    info : what was done to the cloud, and how far its signs can be trusted (for ``report.json``).
    bounds_unit : a box over the cloud in the unit frame, standing in for the mesh when the grid resolution
        is chosen (the whole cloud counts as one object).
    """
    import trimesh

    from data_prep.points import PointsConfig, prepare_points, read_points

    cloud = read_points(path)
    samples, info = prepare_points(path, sampling_config(section, seed), PointsConfig(normals=normals), cloud=cloud)
    surface = np.asarray(samples.surface_points, dtype=np.float64)
    bounds_unit = trimesh.creation.box(bounds=np.stack([surface.min(axis=0), surface.max(axis=0)]))
    return samples, cloud, info, bounds_unit
