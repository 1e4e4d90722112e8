"""Getting SDF samples for the method: from prepared files or straight from meshes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from data_prep.errors import SdfkitError
from data_prep.mesh import file_hash, normalize_mesh, read_mesh
from data_prep.sampling import SamplingConfig, SdfSamples, prepare_mesh, sample_unit_mesh
from sdfkit.config import SamplingChoice
from sdfkit.runtime import torch_threads_kept


def random_rotation(seed: int) -> np.ndarray:
    """(3, 3) rotation drawn uniformly (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _cache_key(path: Path, cfg: SamplingConfig, rotation: int) -> str:
    blob = file_hash(path) + json.dumps(dataclasses.asdict(cfg), sort_keys=True) + f"rot{rotation}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _rotated_samples(path: Path, cfg: SamplingConfig, rotation: int) -> SdfSamples:
    """Samples of ``path`` turned by random rotation number ``rotation`` (0: unrotated)."""
    if rotation == 0:
        return prepare_mesh(path, cfg)
    mesh, digest = read_mesh(path)
    mesh.vertices = np.asarray(mesh.vertices) @ random_rotation(rotation).T
    unit, norm = normalize_mesh(mesh)
    samples = sample_unit_mesh(unit, norm, cfg, f"{path.resolve()}#rotation{rotation}", digest)
    samples.settings = {**dataclasses.asdict(cfg), "rotation": rotation}
    return samples


def load_or_prepare(path: str | Path, section: SamplingChoice, cache_dir: Path | None = None, seed: int = 0,
                    rotation: int = 0) -> SdfSamples:
    """``SdfSamples`` for ``path``: a prepared ``.npz``, or a mesh sampled now (cached in ``cache_dir``).

    ``rotation`` > 0 samples the mesh turned by a random rotation seeded by it (augmentation).
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return SdfSamples.load(path)
    if not path.exists():
        raise SdfkitError(f"mesh file not found: {path}")
    cfg = section.resolve(seed)
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


def _load_job(args: tuple) -> SdfSamples:
    return load_or_prepare(*args)


def load_many(items: list[tuple[str, int, int]], section: SamplingChoice, cache_dir: Path,
              workers: int | None = None) -> list[SdfSamples]:
    """Samples for many (path, seed, rotation) items, prepared in parallel processes and cached."""
    jobs = [(path, section, cache_dir, seed, rotation) for path, seed, rotation in items]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [_load_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_load_job, jobs))


def prepare_cloud(path: str | Path, sampling, normals: str = "auto", denoise: str = "auto"):
    """Samples of the point cloud at ``path`` (:mod:`data_prep.points`), read once.

    sampling : the resolved :class:`~data_prep.sampling.SamplingConfig`; normals : ``auto``, ``given`` or
    ``estimate``; denoise : ``auto``, ``on`` or ``off`` (:class:`data_prep.points.PointsConfig`).

    Returns
    -------
    samples : ``SdfSamples``, laid out as a mesh's.
    cloud : the ``PointCloud`` as read, in the input's units (what the fit is scored against).
    info : what was done to the cloud, and how far its signs can be trusted (for ``report.json``).
    bounds_unit : a box over the cloud in the unit frame, standing in for the mesh when the grid resolution
        is chosen (the whole cloud counts as one object).
    sdf : (q, 3) unit-frame points -> (q,) the cloud's signed distance estimates, negative inside (the
        encoder's input, as a mesh's exact SDF is).
    """
    import trimesh

    from data_prep.points import PointsConfig, prepare_points, read_points

    with torch_threads_kept():
        cloud = read_points(path)
        samples, info, oriented = prepare_points(path, sampling, PointsConfig(normals=normals, denoise=denoise),
                                                 cloud=cloud)
    surface = np.asarray(samples.surface_points, dtype=np.float64)
    bounds_unit = trimesh.creation.box(bounds=np.stack([surface.min(axis=0), surface.max(axis=0)]))

    def sdf(queries: np.ndarray) -> np.ndarray:
        with torch_threads_kept():
            return oriented.sdf(queries)

    return samples, cloud, info, bounds_unit, sdf
