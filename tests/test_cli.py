"""The ``sdfkit`` command in-process through typer's ``CliRunner``: exit codes, output, files."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from data_prep.sampling import SdfSamples
from data_prep.yaml_io import to_dict
from sdfkit.cli import app
from sdfkit.decoder_io import load_decoder

runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("prep", "train", "train-encoder", "fit", "mesh", "eval", "view"):
        assert command in result.output


def test_a_user_error_surfaces_as_one_sdfkit_error(tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "missing.obj"), "--out", str(tmp_path / "out"), "--quiet"])
    # The command group turns it into one line and exit 1, in process as from the console.
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "mesh file not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["2", "0"])
def test_batch_shapes_is_for_folders_and_positive_in_one_line(sphere_mesh_file, tmp_path, value):
    target = sphere_mesh_file if value == "2" else sphere_mesh_file.parent  # a single mesh, or a folder
    result = runner.invoke(app, ["fit", str(target), "--out", str(tmp_path / "out"), "--batch-shapes", value,
                                 "--quiet"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "--batch-shapes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_prep_writes_samples(sphere_mesh_file, tmp_path):
    result = runner.invoke(app, ["prep", str(sphere_mesh_file), "--out", str(tmp_path / "s"), "--points", "500",
                                 "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    (npz,) = (tmp_path / "s").rglob("*.npz")
    samples = SdfSamples.load(npz)
    assert len(samples.points) == 500 and samples.mesh_hash


def test_fit_writes_mesh_latents_report_and_preview(sphere_mesh_file, tmp_path):
    _, cfg, _ = load_decoder(None)
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"model": to_dict(cfg.model), "sampling": {"num_points": 4000}}))
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", str(sphere_mesh_file), "--out", str(out), "--config", str(config),
                                 "--steps", "20", "--resolution", "32", "--grid-resolution", "8", "--device", "cpu",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["latents.pt", "mesh.obj", "preview.png", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert f"wrote {out}/mesh.obj" in result.output and report["steps"] == 20
    assert "preview" in report["seconds"]
    result = runner.invoke(app, ["fit", str(sphere_mesh_file), "--out", str(out), "--config", str(config),
                                 "--steps", "2", "--resolution", "32", "--no-preview", "--quiet"])
    assert result.exit_code == 1 and "--force" in result.stderr
