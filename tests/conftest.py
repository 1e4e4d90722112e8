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


def running_in_ci() -> bool:
    """Whether ``CI`` is set to a true value (``CI=true``, as CI services and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def must_run_in_ci(item: pytest.Item) -> bool:
    """The browser test and every test on ``../shared`` meshes: on a laptop they may skip, in CI they must run."""
    return item.get_closest_marker("browser") is not None or "shared_meshes" in getattr(item, "fixturenames", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Under CI, a skip of a test that must run there is a failure, so CI cannot pass by skipping it."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and running_in_ci() and must_run_in_ci(item) and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI={os.environ['CI']}, where this test must run: {reason}"


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
