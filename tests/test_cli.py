"""The ``sdfkit`` command in-process through typer's ``CliRunner``: exit codes, output, files."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from data_prep.errors import SdfkitError
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
    assert result.exit_code != 0
    assert isinstance(result.exception, SdfkitError) and "mesh file not found" in str(result.exception)
    assert not (tmp_path / "out").exists()


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
    assert isinstance(result.exception, SdfkitError) and "--force" in str(result.exception)
