"""Under CI=true a skip of the browser test or of a test on ../shared meshes fails the run (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_pytest(test: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "CI"} | env
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test], cwd=REPO,
                          env=full, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("test, env", [
    ("tests/test_viewer.py::test_render_pixels", {"SDFKIT_SHARED": "/nonexistent"}),  # no ../shared/meshes
    ("tests/test_browser.py", {"PATH": "/nonexistent", "SDFKIT_SHARED": "/nonexistent"}),  # no Chromium either
])
def test_a_skip_fails_under_ci_only(test, env):
    laptop = run_pytest(test, **env)
    assert laptop.returncode == 0 and "skipped" in laptop.stdout, laptop.stdout
    ci = run_pytest(test, CI="true", **env)
    assert ci.returncode == 1 and "where this test must run" in ci.stdout, ci.stdout
    assert "passed" not in ci.stdout.splitlines()[-1]
