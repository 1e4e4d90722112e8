"""One resolution range and one overwrite rule across the commands (fit, mesh, slices, eval --json, render)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdfkit.cli import app
from sdfkit.errors import SdfkitError
from sdfkit.extract import RESOLUTION_RANGE, check_resolution

LO, HI = RESOLUTION_RANGE


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_check_resolution_accepts_exactly_the_range():
    assert check_resolution(LO) == LO and check_resolution(HI) == HI
    for bad in (LO - 1, HI + 1, 0, 32.5, "abc", True):
        with pytest.raises(SdfkitError, match=f"between {LO} and {HI}"):
            check_resolution(bad)


@pytest.mark.parametrize("resolution", [LO - 1, HI + 1])
def test_every_command_refuses_the_same_resolutions(sphere_mesh_file: Path, tmp_path: Path, resolution: int):
    runs = {
        "fit": invoke("fit", sphere_mesh_file, "--out", tmp_path / "fit", "--resolution", resolution, "--quiet"),
        "mesh": invoke("mesh", "--exact", sphere_mesh_file, tmp_path / "m.ply", "--resolution", resolution),
        "slices": invoke("slices", "--exact", sphere_mesh_file, "--out", tmp_path / "s.png", "--resolution", resolution),
    }
    for result in runs.values():
        assert_one_line(result, f"--resolution must be a whole number between {LO} and {HI}, got {resolution}")
    assert not [p.name for p in (tmp_path / "fit", tmp_path / "m.ply", tmp_path / "s.png") if p.exists()]


def test_every_command_refuses_an_existing_output_without_force(sphere_mesh_file: Path, tmp_path: Path):
    # Each command once without --force (refused, the old file intact) and once with it (replaced).
    outputs = {
        "mesh": (tmp_path / "m.ply", ["mesh", "--exact", sphere_mesh_file, tmp_path / "m.ply", "--resolution", 24,
                                      "--faces", 0]),
        "slices": (tmp_path / "s.png", ["slices", "--exact", sphere_mesh_file, "--out", tmp_path / "s.png",
                                        "--resolution", 16, "--count", 1]),
        "eval": (tmp_path / "m.json", ["eval", sphere_mesh_file, sphere_mesh_file, "--json", tmp_path / "m.json",
                                       "--surface-points", 500, "--volume-points", 2000]),
        "render": (tmp_path / "r.png", ["render", sphere_mesh_file, "--out", tmp_path / "r.png", "--size", "32x32"]),
    }
    for command, (path, args) in outputs.items():
        path.write_bytes(b"old")
        assert_one_line(invoke(*args), f"{path} already exists (pass --force to replace it)")
        assert path.read_bytes() == b"old", command
        result = invoke(*args, "--force")
        assert result.exit_code == 0, (command, result.output)
        assert path.read_bytes() != b"old", command
    # fit's output is a folder: one that is not empty is refused before any work.
    folder = tmp_path / "fit"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    assert_one_line(invoke("fit", sphere_mesh_file, "--out", folder, "--quiet"), "already exists (pass --force")
    assert (folder / "mine.txt").read_text() == "keep"
