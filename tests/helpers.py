"""Shared test helpers: synthetic shapes with exact SDFs, small configs, random decoders, the CLI.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from data_prep.mesh import Normalization
from data_prep.sampling import SdfSamples
from sdfkit.config import GridConfig, ModelConfig, SdfkitConfig
from sdfkit.models import make_decoder
from sdfkit.models.siren import ModulatedSiren

REPO = Path(__file__).resolve().parents[1]
SPHERE_RADIUS = 0.5

# Tolerances of the exact-SDF checks (data_prep.sdf and the sampling built on it).
#: Distances agree with an independent exact computation to this (unit frame).
DISTANCE_TOL = 1e-5
#: Signs are judged only where the surface is at least this far.
SIGN_BAND = 1e-3
#: Share of signs that must agree with exact winding numbers on watertight meshes.
WATERTIGHT_AGREEMENT = 0.999


def sphere_sdf(points: np.ndarray, radius: float = SPHERE_RADIUS) -> np.ndarray:
    """Exact signed distance to a sphere at the origin: (n, 3) -> (n,), negative inside."""
    return np.linalg.norm(points, axis=-1) - radius


def sphere_samples(count: int = 4000, radius: float = SPHERE_RADIUS, seed: int = 0) -> SdfSamples:
    """Samples of a sphere with exact distances: half near the surface, half uniform in [-1, 1]^3."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    surface = directions * radius
    near = surface[: count // 2] + rng.normal(scale=0.02, size=(count // 2, 3))
    uniform = rng.uniform(-1.0, 1.0, size=(count - count // 2, 3))
    points = np.concatenate([near, uniform]).astype(np.float32)
    return SdfSamples(points=points, sdf=sphere_sdf(points, radius).astype(np.float32),
                      surface_points=surface.astype(np.float32), surface_normals=directions.astype(np.float32),
                      normalization=Normalization(center=(0.0, 0.0, 0.0), scale=1.0), source="synthetic-sphere",
                      mesh_hash="", settings={})


def small_config(resolution: int = 4, layout: str = "local") -> SdfkitConfig:
    """A method config small enough for unit tests: a 16-wide, 2-layer decoder, 8-value codes."""
    return SdfkitConfig(model=ModelConfig(hidden=16, layers=2, latent_dim=8),
                        grid=GridConfig(resolution=resolution, layout=layout))  # type: ignore[arg-type]


def random_decoder(cfg: SdfkitConfig, seed: int = 0) -> ModulatedSiren:
    """A randomly initialised decoder of ``cfg.model`` (seeded)."""
    torch.manual_seed(seed)
    return make_decoder(cfg.model)


def run_sdfkit(*args: object, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m sdfkit ARGS`` in a fresh process, as a user runs it (text output captured)."""
    return subprocess.run([sys.executable, "-m", "sdfkit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def reference_winding_number(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact generalized winding number: sum of signed solid angles / 4 pi (Van Oosterom and Strackee)."""
    out = np.zeros(len(points))
    for i, p in enumerate(points):
        a, b, c = (vertices[faces[:, k]] - p for k in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        det = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la + np.einsum("ij,ij->i", c, a) * lb
        out[i] = 2.0 * np.arctan2(det, den).sum() / (4.0 * np.pi)
    return out
