"""Shared fixtures: paths to the team's real meshes and small generated ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import trimesh

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

REPO = Path(__file__).resolve().parents[1]
SHARED_MESHES = Path(os.environ.get("SDFKIT_SHARED", REPO.parent / "shared")) / "meshes"


@pytest.fixture(scope="session")
def shared_meshes() -> Path:
    """``../shared/meshes``; tests that need it skip with a reason when it is absent."""
    if not SHARED_MESHES.is_dir():
        pytest.skip(f"shared meshes not found at {SHARED_MESHES}")
    return SHARED_MESHES


@pytest.fixture
def sphere_mesh_file(tmp_path: Path) -> Path:
    """A small watertight sphere (radius 0.5, centred at (1, 2, 3)) written as OBJ."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    mesh.apply_translation([1.0, 2.0, 3.0])
    path = tmp_path / "sphere.obj"
    mesh.export(path)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
