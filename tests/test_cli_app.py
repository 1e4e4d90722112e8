"""Usage errors and ``--version`` of the ``sdfkit`` command, in process (CliRunner) and through a real interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from sdfkit.cli import app

#: (arguments, a fragment of the one error line) for each kind of usage error a user meets first.
USAGE_ERRORS = [
    (["fit", "--bogus", "mesh.obj"], "No such option: --bogus"),
    (["fit"], "Missing argument"),
    (["mesh", "--exact", "a.obj", "b.obj", "--resolution", "abc"], "--resolution"),
    (["bogus"], "No such command 'bogus'"),
    ([], "no command given"),
]


def assert_usage_error(code: int, stdout: str, stderr: str, fragment: str, bare: bool) -> None:
    assert code == 2, (code, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], stderr
    assert "Traceback" not in stdout + stderr
    if bare:  # a bare `sdfkit` shows its help where a reader looks for it
        assert "Usage: sdfkit" in stdout and "fit" in stdout
    else:
        assert stdout == ""


@pytest.mark.parametrize("args, fragment", USAGE_ERRORS)
def test_usage_errors_in_process(args, fragment):
    result = CliRunner().invoke(app, args)
    assert_usage_error(result.exit_code, result.stdout, result.stderr, fragment, bare=not args)


@pytest.mark.parametrize("args, fragment", USAGE_ERRORS)
def test_usage_errors_through_the_interpreter(args, fragment, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sdfkit", *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert_usage_error(proc.returncode, proc.stdout, proc.stderr, fragment, bare=not args)


def test_version_and_help():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"sdfkit {version('sdfkit')}\n" and result.stderr == ""
    # Buffered streams, as a pipe gives them: the script ends without the interpreter's teardown, so it must flush.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "--version"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0 and proc.stdout == f"sdfkit {version('sdfkit')}\n" and proc.stderr == ""
    result = CliRunner().invoke(app, ["fit", "--help"])
    assert result.exit_code == 0 and "--max-seconds" in result.stdout and result.stderr == ""


def test_user_errors_exit_1_in_process(tmp_path):
    result = CliRunner().invoke(app, ["mesh", "--exact", str(tmp_path / "none.obj"), str(tmp_path / "out.ply")])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
