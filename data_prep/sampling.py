"""DeepSDF-style SDF samples of a normalised mesh, with exact distances and robust signs.

Half of the points (``near_fraction``) lie near the surface: surface points
drawn by area, perturbed by Gaussian noise at a few scales. The rest are
uniform in the unit sphere or in the normalised bounding box (scenes).
Distances are exact point-to-triangle distances; signs come from generalized
winding numbers (:mod:`data_prep.sdf`), so they hold on meshes with holes,
inner faces and inverted parts. Sign convention: **negative inside**.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
import trimesh

from data_prep.errors import SdfkitError
from data_prep.files import atomic_path
from data_prep.mesh import Normalization, normalize_mesh, read_mesh
from data_prep.sdf import signed_distance
from data_prep.yaml_io import from_dict, load_yaml

FORMAT_VERSION = 1

#: Keys of a samples ``.npz`` (read by the training and fitting stages).
SAMPLE_KEYS = ("points", "sdf", "surface_points", "surface_normals", "center", "scale", "source", "mesh_hash",
               "settings", "format_version")

#: dtype kind and number of dimensions of each array key.
_ARRAY_SPECS = {"points": ("f", 2), "sdf": ("f", 1), "surface_points": ("f", 2), "surface_normals": ("f", 2),
                "center": ("f", 1), "scale": ("f", 0), "source": ("U", 0), "mesh_hash": ("U", 0), "settings": ("U", 0)}


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How SDF samples are drawn (see ``docs/sampling.md`` for the presets' sources)."""

    num_points: int = 500_000
    """Samples per shape (Mehta et al. 2021)."""
    near_fraction: float = 0.5
    """Share of samples near the surface; the rest are uniform in the volume."""
    noise_stds: tuple[float, ...] = (0.01, 0.002, 0.05)
    """Standard deviations (unit frame) of the Gaussian offsets of near-surface samples."""
    noise_weights: tuple[float, ...] = (0.4, 0.4, 0.2)
    """Share of near-surface samples at each noise scale."""
    volume: Literal["sphere", "bbox"] = "sphere"
    """Uniform samples in the unit sphere, or in the normalised bounding box (scenes)."""
    bbox_padding: float = 0.05
    """Padding of the bounding box for ``volume: bbox``, in unit-frame lengths."""
    num_surface: int = 100_000
    """Surface samples (with normals) stored beside the SDF samples."""
    radius: float = 1.0
    """Normalisation: the farthest vertex lands at this radius."""
    method: Literal["exact", "mesh-to-sdf"] = "exact"
    """``exact``: point-to-triangle distances, winding-number signs; ``mesh-to-sdf``: that library's sampler."""
    seed: int = 0

    def __post_init__(self):
        if self.method not in ("exact", "mesh-to-sdf"):
            raise SdfkitError(f"sampling method must be exact or mesh-to-sdf, got '{self.method}'")
        if self.volume not in ("sphere", "bbox"):
            raise SdfkitError(f"sampling volume must be sphere or bbox, got '{self.volume}'")
        if self.num_surface < 0:
            raise SdfkitError(f"sampling num_surface must be non-negative, got {self.num_surface}")
        if not self.radius > 0 or self.bbox_padding < 0:
            raise SdfkitError("sampling radius must be positive and bbox_padding non-negative")
        if self.num_points < 2:
            raise SdfkitError(f"sampling num_points must be at least 2, got {self.num_points}")
        if not 0.0 <= self.near_fraction <= 1.0:
            raise SdfkitError(f"sampling near_fraction must be in [0, 1], got {self.near_fraction}")
        if len(self.noise_stds) != len(self.noise_weights) or not self.noise_stds:
            raise SdfkitError("sampling noise_stds and noise_weights must have the same, non-zero length")
        if min(self.noise_stds) < 0 or min(self.noise_weights) < 0 or sum(self.noise_weights) <= 0:
            raise SdfkitError("sampling noise scales and weights must be non-negative")


#: Named presets (sources in ``docs/sampling.md``); change one scale here.
#: ``deepsdf``: DeepSDF's preprocessing perturbs surface points with variances
#: 0.005 and 0.0005 (std ~0.071 and ~0.022), half each.
#: ``mesh-to-sdf``: mesh_to_sdf.sample_sdf_near_surface's std 0.0025 and
#: 0.00025, half each: 28 to 89 times tighter.
#: ``default``: std 0.01 and 0.002 (40 % each) plus 20 % at a wide 0.05, so
#: that both a fine surface band and the cells around it are covered.
PRESETS: dict[str, SamplingConfig] = {
    "default": SamplingConfig(noise_stds=(0.01, 0.002, 0.05), noise_weights=(0.4, 0.4, 0.2)),
    "deepsdf": SamplingConfig(noise_stds=(float(np.sqrt(0.005)), float(np.sqrt(0.0005))), noise_weights=(0.5, 0.5)),
    "mesh-to-sdf": SamplingConfig(noise_stds=(0.0025, 0.00025), noise_weights=(0.5, 0.5)),
}


def sampling_preset(name: str) -> SamplingConfig:
    """A named :class:`SamplingConfig` (``default``, ``deepsdf``, ``mesh-to-sdf``)."""
    if name not in PRESETS:
        raise SdfkitError(f"unknown sampling preset '{name}' (choose from {', '.join(PRESETS)})")
    return PRESETS[name]


def load_sampling_config(path: str | Path | None = None, preset: str | None = None) -> SamplingConfig:
    """Sampling settings: a preset, with the keys of a YAML file applied over it.

    The preset is ``preset`` if given, else the file's ``preset:`` key, else
    ``default``. Other keys are :class:`SamplingConfig` fields (unknown keys
    are rejected by name), e.g. ``noise_stds: [0.01, 0.002]`` with
    ``noise_weights: [0.5, 0.5]``.
    """
    data = load_yaml(path) if path is not None else {}
    file_preset = data.pop("preset", None)
    if file_preset is not None and not isinstance(file_preset, str):
        raise SdfkitError(f"config key 'preset' must be a string, got {file_preset!r}")
    start = sampling_preset(preset or file_preset or "default")
    return from_dict(SamplingConfig, {**dataclasses.asdict(start), **data})


def config_settings(config: SamplingConfig) -> dict:
    """The JSON-plain settings stored with samples (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def sample_surface(mesh: trimesh.Trimesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points on ``mesh`` by area, with their faces' unit normals: (count, 3), (count, 3)."""
    areas = np.asarray(mesh.area_faces, dtype=np.float64)
    if not areas.sum() > 0:
        raise SdfkitError("mesh has zero surface area")
    face = rng.choice(len(areas), size=count, p=areas / areas.sum())
    uv = rng.random((count, 2))
    flip = uv.sum(axis=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)[face]]
    points = tri[:, 0] + uv[:, :1] * (tri[:, 1] - tri[:, 0]) + uv[:, 1:] * (tri[:, 2] - tri[:, 0])
    return points, np.asarray(mesh.face_normals, dtype=np.float64)[face]


def sample_volume(count: int, volume: str, lo: np.ndarray, hi: np.ndarray, radius: float,
                  rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform points in the ball of ``radius`` or in the box [lo, hi]: (count, 3)."""
    if volume == "bbox":
        return rng.uniform(lo, hi, size=(count, 3))
    direction = rng.normal(size=(count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * radius * rng.random((count, 1)) ** (1.0 / 3.0)


def mesh_to_sdf_values(mesh_unit: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Signed distances of (n, 3) ``points`` by the mesh-to-sdf library: (n,), negative inside.

    Its distances are to a point cloud scanned from 100 rendered views and its
    signs come from the normals of the nearest scanned points ("normal"
    method), so both are approximate; needs OpenGL (EGL when no display).
    """
    if "PYOPENGL_PLATFORM" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["PYOPENGL_PLATFORM"] = "egl"
    try:
        import mesh_to_sdf  # must come before pyrender, which fixes the OpenGL platform on import
    except Exception as exc:
        raise SdfkitError(f"--method mesh-to-sdf: cannot import mesh_to_sdf "
                          f"({type(exc).__name__}: {str(exc)[:120]})") from None
    try:
        values = mesh_to_sdf.mesh_to_sdf(mesh_unit, np.asarray(points, dtype=np.float64),
                                         surface_point_method="scan", sign_method="normal")
    except Exception as exc:  # rendering failures surface as many types
        raise SdfkitError(f"mesh-to-sdf failed ({type(exc).__name__}: {str(exc).strip()[:120]}); "
                          "try --method exact") from None
    return np.asarray(values, dtype=np.float64)


def sample_mesh(mesh_unit: trimesh.Trimesh, config: SamplingConfig,
                workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SDF samples of a mesh already in the unit frame.

    Parameters
    ----------
    mesh_unit : the mesh in the normalised frame.
    config : counts, noise scales, volume, method and seed.
    workers : processes for the exact distances (results do not depend on it).

    Returns
    -------
    points : (n, 3) float32, near-surface samples first, then uniform ones.
    sdf : (n,) float32, signed distance, negative inside.
    surface_points : (m, 3) float32, area-weighted surface samples.
    surface_normals : (m, 3) float32, their faces' unit normals.
    """
    rng = np.random.default_rng(config.seed)
    n_near = int(round(config.num_points * config.near_fraction))
    n_volume = config.num_points - n_near
    surface_points, surface_normals = sample_surface(mesh_unit, config.num_surface, rng)
    base, _ = sample_surface(mesh_unit, n_near, rng)
    weights = np.asarray(config.noise_weights) / np.sum(config.noise_weights)
    scale = np.asarray(config.noise_stds)[rng.choice(len(weights), size=n_near, p=weights)]
    near = base + rng.normal(size=(n_near, 3)) * scale[:, None]
    lo, hi = mesh_unit.bounds
    # The uniform half fills the unit sphere whatever the normalisation margin.
    volume = sample_volume(n_volume, config.volume, lo - config.bbox_padding, hi + config.bbox_padding, 1.0, rng)
    points = np.concatenate([near, volume])
    if config.method == "mesh-to-sdf":
        sdf = mesh_to_sdf_values(mesh_unit, points)
    else:
        sdf = signed_distance(mesh_unit.vertices, mesh_unit.faces, points, workers=workers)
    return (points.astype(np.float32), sdf.astype(np.float32), surface_points.astype(np.float32),
            surface_normals.astype(np.float32))


@dataclasses.dataclass
class SdfSamples:
    """One shape's samples and everything needed to map them back to the input.

    points : (n, 3) float32, unit frame; sdf : (n,) float32, negative inside;
    surface_points, surface_normals : (m, 3) float32; normalization : the
    input -> unit frame transform; source : the mesh's path; mesh_hash : its
    SHA-256; settings : the sampling settings.
    """

    points: np.ndarray
    sdf: np.ndarray
    surface_points: np.ndarray
    surface_normals: np.ndarray
    normalization: Normalization
    source: str
    mesh_hash: str
    settings: dict

    def save(self, path: str | Path) -> None:
        """Write a compressed ``.npz`` atomically."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            points=self.points.astype(np.float32), sdf=self.sdf.astype(np.float32),
            surface_points=self.surface_points.astype(np.float32),
            surface_normals=self.surface_normals.astype(np.float32),
            center=np.asarray(self.normalization.center, dtype=np.float64), scale=np.float64(self.normalization.scale),
            source=np.str_(self.source), mesh_hash=np.str_(self.mesh_hash),
            settings=np.str_(json.dumps(self.settings, sort_keys=True)), format_version=np.int64(FORMAT_VERSION),
        )
        with atomic_path(path) as tmp:
            tmp.write_bytes(buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> SdfSamples:
        """Read and validate a samples file; one-line :class:`SdfkitError` if it is corrupt or foreign."""
        path = Path(path)
        if not path.is_file():
            raise SdfkitError(f"samples file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # zipfile, zlib and numpy raise many types for damaged files
            raise SdfkitError(f"cannot read samples {path}: not a valid .npz ({type(exc).__name__})") from None
        missing = [k for k in SAMPLE_KEYS if k not in arrays]
        if missing:
            raise SdfkitError(f"{path} is not an sdfkit samples file (missing '{missing[0]}')")
        version = arrays["format_version"]
        if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
            raise SdfkitError(f"{path}: unsupported samples format version {version!r} (expected {FORMAT_VERSION})")
        for key, (kind, ndim) in _ARRAY_SPECS.items():
            value = arrays[key]
            if value.dtype.kind != kind or value.ndim != ndim:
                raise SdfkitError(f"{path}: '{key}' has dtype {value.dtype} and {value.ndim} dims, "
                                  f"expected {kind} x {ndim}")
        points, sdf = arrays["points"], arrays["sdf"]
        surface_points, surface_normals = arrays["surface_points"], arrays["surface_normals"]
        if (points.shape[1:] != (3,) or sdf.shape != (len(points),) or surface_points.shape[1:] != (3,)
                or surface_normals.shape != surface_points.shape or arrays["center"].shape != (3,)):
            raise SdfkitError(f"{path}: arrays have inconsistent shapes")
        if len(points) == 0:
            raise SdfkitError(f"{path}: holds no samples")
        if not all(np.isfinite(arrays[k]).all() for k in ("points", "sdf", "surface_points", "surface_normals")):
            raise SdfkitError(f"{path}: samples contain NaN or infinite values")
        try:
            settings = json.loads(str(arrays["settings"]))
            normalization = Normalization.from_dict({"center": arrays["center"].tolist(),
                                                     "scale": float(arrays["scale"])})
        except (ValueError, SdfkitError) as exc:
            raise SdfkitError(f"{path}: invalid settings or transform ({str(exc)[:100]})") from None
        return cls(
            points=points.astype(np.float32), sdf=sdf.astype(np.float32),
            surface_points=surface_points.astype(np.float32), surface_normals=surface_normals.astype(np.float32),
            normalization=normalization, source=str(arrays["source"]), mesh_hash=str(arrays["mesh_hash"]),
            settings=settings,
        )


def prepare_mesh(mesh: str | Path | trimesh.Trimesh, config: SamplingConfig, workers: int = 1,
                 source: str | None = None, mesh_hash: str | None = None) -> SdfSamples:
    """Load, clean and normalise a mesh and sample it.

    Parameters
    ----------
    mesh : a mesh file any format :func:`data_prep.mesh.load_mesh` reads, or a mesh already
        loaded and cleaned by it (in the input's units; nothing is read from disk then).
    config : the sampling settings (``config.radius`` sets the normalisation).
    workers : processes for the exact distances (results do not depend on it).
    source, mesh_hash : recorded with the samples; for a path, its resolved name and the file's SHA-256.
    """
    if not isinstance(mesh, trimesh.Trimesh):
        path = Path(mesh)
        mesh, digest = read_mesh(path)
        source, mesh_hash = source or str(path.resolve()), mesh_hash or digest
    unit, norm = normalize_mesh(mesh, config.radius)
    return sample_unit_mesh(unit, norm, config, source or "", mesh_hash or "", workers)


def sample_unit_mesh(unit: trimesh.Trimesh, normalization: Normalization, config: SamplingConfig, source: str,
                     mesh_hash: str, workers: int = 1) -> SdfSamples:
    """Samples of a mesh already in the unit frame that ``normalization`` maps its input to."""
    points, sdf, surface_points, surface_normals = sample_mesh(unit, config, workers=workers)
    return SdfSamples(points, sdf, surface_points, surface_normals, normalization, source, mesh_hash,
                      config_settings(config))
