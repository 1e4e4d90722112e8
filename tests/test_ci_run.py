"""``.ci/run`` under CI=true fails, before building anything, when Chromium or ../shared/meshes is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SDFKIT_SHARED", REPO.parent / "shared"))


def ci_run(tmp_path: Path, path: str, shared: Path) -> subprocess.CompletedProcess:
    env = {"PATH": path, "HOME": str(tmp_path), "CI": "true", "SDFKIT_SHARED": str(shared)}
    return subprocess.run([shutil.which("bash"), str(REPO / ".ci" / "run")], env=env, capture_output=True,
                          text=True, timeout=60)


def bin_without_chromium(tmp_path: Path) -> str:
    """A PATH holding only what .ci/run calls before its checks (no Chromium, and no apt-get to install one)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "dirname").symlink_to(shutil.which("dirname"))
    return str(folder)


def test_ci_fails_without_chromium(tmp_path):
    proc = ci_run(tmp_path, bin_without_chromium(tmp_path), SHARED)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # It stops at the check, before building the environment.
    assert proc.stdout.splitlines() == ["ci: could not install chromium",
                                        "ci: chromium is missing; the browser test must run in CI"]


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="no chromium installed: the run stops at that check first")
def test_ci_fails_without_shared_meshes(tmp_path):
    proc = ci_run(tmp_path, os.environ["PATH"], tmp_path / "no-shared")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"ci: {tmp_path / 'no-shared'}/meshes is missing; the tests on the team's meshes must run in CI"
