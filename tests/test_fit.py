"""``sdfkit.fit``: one trip for the input mesh, on a small synthetic sphere with the shipped decoder."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from data_prep.mesh import file_hash
from data_prep.yaml_io import to_dict
from sdfkit.decoder_io import load_decoder
from sdfkit.errors import SdfkitError
from sdfkit.fit import FitRequest, FitResult, fit_mesh
from sdfkit.io import load_torch

#: Paths whose ``open`` audit events are being counted (audit hooks cannot be removed, so one hook serves all).
_WATCHED: dict[str, int] = {}


def _count_opens(event: str, args: tuple) -> None:
    if event == "open" and _WATCHED and isinstance(args[0], (str, bytes, os.PathLike)):
        name = os.path.realpath(os.fsdecode(args[0]))
        if name in _WATCHED:
            _WATCHED[name] += 1


sys.addaudithook(_count_opens)


def small_fit_config(tmp_path: Path) -> Path:
    """A config matching the shipped decoder's model, with few samples so the test runs in seconds."""
    _, cfg, _ = load_decoder(None)
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({"model": to_dict(cfg.model), "sampling": {"num_points": 4000},
                                    "fit": {"steps": 3, "resolution": 24}, "grid": {"resolution": 8}}))
    return path


def test_the_input_mesh_is_read_from_disk_once(sphere_mesh_file, tmp_path):
    """Loading, sampling, the grid and scoring share one in-memory mesh: the file is opened once."""
    opts = FitRequest(config=str(small_fit_config(tmp_path)), device="cpu")
    drawn: list[FitResult] = []
    key = os.path.realpath(sphere_mesh_file)
    _WATCHED[key] = 0
    try:
        result = fit_mesh(sphere_mesh_file, tmp_path / "out", opts, progress=False,
                          preview=lambda path, r: (drawn.append(r), path.write_bytes(b"png")))
        opens = _WATCHED[key]
    finally:
        _WATCHED.clear()
    assert opens == 1
    # The same objects reach the drawer, and the report on disk is the one returned.
    assert drawn and drawn[0] is result and (tmp_path / "out" / "preview.png").read_bytes() == b"png"
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == result.report
    assert load_torch(tmp_path / "out" / "latents.pt")["mesh_hash"] == file_hash(sphere_mesh_file)
    assert len(result.mesh.faces) == 1280 and result.report["steps"] == 3


def test_the_lm_optimizer_refines_the_encoders_codes_no_worse(sphere_mesh_file, tmp_path):
    """``--optimizer lm`` after the shipped encoder: sweeps counted as steps, refinement kept only when no worse."""
    opts = FitRequest(config=str(small_fit_config(tmp_path)), device="cpu", init="encoder", optimizer="lm", steps=2,
                      preview=False)
    report = fit_mesh(sphere_mesh_file, tmp_path / "out", opts, progress=False).report
    assert report["optimizer"] == "lm" and report["steps"] == 2
    assert report["refinement"]["end_l1"] <= report["refinement"]["start_l1"]


def test_an_unknown_optimizer_is_one_line(sphere_mesh_file, tmp_path):
    try:
        fit_mesh(sphere_mesh_file, tmp_path / "out", FitRequest(config=str(small_fit_config(tmp_path)), optimizer="sgd",
                                                                device="cpu", preview=False), progress=False)
    except SdfkitError as exc:
        assert "optimizer" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("an unknown optimizer was accepted")
    assert not (tmp_path / "out").exists()


def test_the_encoder_path_takes_the_refine_settings_unless_they_are_asked_for(tmp_path):
    from sdfkit.config import FitConfig, SdfkitConfig
    from sdfkit.fit import fit_settings

    defaults = FitConfig()
    refined = fit_settings(SdfkitConfig(), FitRequest(init="encoder")).fit
    assert (refined.steps, refined.lr, refined.points_per_code) == (
        defaults.refine_steps, defaults.refine_lr, defaults.refine_points_per_code)
    assert refined.surface_fraction == defaults.refine_surface_fraction > 0
    assert refined.weight_floor is defaults.refine_weight_floor is None  # settled by precision on the device
    from_noise = fit_settings(SdfkitConfig(), FitRequest(init="random")).fit
    assert (from_noise.steps, from_noise.lr, from_noise.points_per_code) == (
        defaults.steps, defaults.lr, defaults.points_per_code)
    assert from_noise.surface_fraction == defaults.surface_fraction == 0
    assert from_noise.weight_floor == defaults.weight_floor == 0
    assert refined.average == defaults.refine_average > 0
    assert from_noise.average == defaults.average == 0
    # What the user asks for wins: the CLI's --steps and --lr, a config file's fit section.
    asked = fit_settings(SdfkitConfig(), FitRequest(init="encoder", steps=7, lr=0.001)).fit
    assert (asked.steps, asked.lr, asked.points_per_code) == (7, 0.001, defaults.refine_points_per_code)
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump({"fit": {"lr": 0.003, "points_per_code": 5.0, "surface_fraction": 0.5}}))
    from_file = fit_settings(SdfkitConfig(), FitRequest(init="encoder", config=str(config))).fit
    assert (from_file.steps, from_file.lr, from_file.points_per_code) == (defaults.refine_steps, 0.003, 5.0)
    assert from_file.surface_fraction == 0.5
    # The refinement's own share applies after the encoder only.
    config.write_text(yaml.safe_dump({"fit": {"refine_surface_fraction": 0.6}}))
    assert fit_settings(SdfkitConfig(), FitRequest(init="encoder", config=str(config))).fit.surface_fraction == 0.6
    assert fit_settings(SdfkitConfig(), FitRequest(init="random", config=str(config))).fit.surface_fraction == 0.0
    config.write_text(yaml.safe_dump({"fit": {"weight_floor": 0.0}}))
    assert fit_settings(SdfkitConfig(), FitRequest(init="encoder", config=str(config))).fit.weight_floor == 0.0
    config.write_text(yaml.safe_dump({"fit": {"average": 0.0}}))
    assert fit_settings(SdfkitConfig(), FitRequest(init="encoder", config=str(config))).fit.average == 0.0


def test_settling_on_a_device_makes_the_precision_and_the_weight_floor_concrete():
    """``auto`` becomes the device's precision; an unset floor is 0 in bf16 (no cheaper there) and the float32
    floor otherwise; a floor that was asked for stays."""
    import torch

    from sdfkit.config import FP32_WEIGHT_FLOOR, SdfkitConfig, replace_section
    from sdfkit.fit import fit_settings, settle_on_device
    from sdfkit.runtime import resolve_precision

    cpu = torch.device("cpu")
    cfg = fit_settings(SdfkitConfig(), FitRequest(init="encoder"))
    assert (cfg.fit.precision, cfg.fit.weight_floor) == ("auto", None)
    for precision, floor in (("fp32", FP32_WEIGHT_FLOOR), ("tf32", FP32_WEIGHT_FLOOR), ("bf16", 0.0)):
        settled = settle_on_device(replace_section(cfg, "fit", precision=precision), cpu).fit
        assert (settled.precision, settled.weight_floor) == (precision, floor)
    auto = settle_on_device(cfg, cpu).fit
    assert auto.precision == resolve_precision("auto", cpu) != "auto"
    assert auto.weight_floor == (0.0 if auto.precision == "bf16" else FP32_WEIGHT_FLOOR)
    asked = settle_on_device(replace_section(cfg, "fit", precision="bf16", weight_floor=0.1), cpu).fit
    assert asked.weight_floor == 0.1
    assert settle_on_device(settle_on_device(cfg, cpu), cpu) == settle_on_device(cfg, cpu)
    # From noise the floor is 0 whatever the precision.
    assert settle_on_device(fit_settings(SdfkitConfig(), FitRequest(init="random")), cpu).fit.weight_floor == 0.0


def test_a_config_file_changes_only_the_keys_it_names(tmp_path):
    from sdfkit.config import SdfkitConfig
    from sdfkit.fit import fit_settings

    _, shipped, _ = load_decoder(None)
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump({"fit": {"lr": 0.003}, "sampling": {"num_points": 4000}}))
    cfg = fit_settings(shipped, FitRequest(config=str(config)))
    assert cfg.fit.lr == 0.003 and cfg.sampling.num_points == 4000
    # The decoder's own sampling and grid settings stay where the file is silent.
    assert cfg.sampling.volume == shipped.sampling.volume == "bbox"
    assert cfg.grid == shipped.grid and cfg.model == shipped.model
    other = dataclasses.replace(SdfkitConfig(), model=dataclasses.replace(SdfkitConfig().model, hidden=32))
    config.write_text(yaml.safe_dump({"model": {"hidden": 48}}))
    with pytest.raises(SdfkitError, match="model section does not match"):
        fit_settings(other, FitRequest(config=str(config)))
    config.write_text(yaml.safe_dump({"fit": {"steps": 5}}))
    assert fit_settings(other, FitRequest(config=str(config))).model.hidden == 32


def test_the_report_counts_the_parts_dropped_away_from_the_input(sphere_mesh_file, tmp_path):
    """Every fit of a mesh checks its parts against the input's surface samples; ``keep_unsupported`` skips it."""
    config = str(small_fit_config(tmp_path))
    result = fit_mesh(sphere_mesh_file, tmp_path / "out", FitRequest(config=config, device="cpu"), progress=False)
    extent = (result.bounds[1] - result.bounds[0]).max()
    cell = extent / max(result.report["tiles"]["grid"])
    step = extent / (result.report["config"]["fit"]["resolution"] - 1)
    expected = max(0.25 * cell, 2 * step) * result.normalization.scale
    assert result.report["unsupported_parts"]["max_distance"] == pytest.approx(expected)
    assert result.report["unsupported_parts"]["removed"] == 0  # a sphere fitted to a sphere: one part, supported
    # The report names the arithmetic and the floor the steps ran with, not "auto".
    assert result.report["config"]["fit"]["precision"] in ("fp32", "bf16")
    assert isinstance(result.report["config"]["fit"]["weight_floor"], float)
    kept = fit_mesh(sphere_mesh_file, tmp_path / "kept", FitRequest(config=config, device="cpu",
                                                                  keep_unsupported=True), progress=False)
    assert "unsupported_parts" not in kept.report


def test_fit_codes_ends_on_the_running_average_of_its_steps(monkeypatch):
    """The codes a fit returns are the average of the codes after each of its steps, by the plain recurrence."""
    import torch

    from sdfkit.config import replace_section
    from sdfkit.fit import fit_codes
    from sdfkit.optim import CodeAdam
    from sdfkit.scene import make_scene

    from helpers import random_decoder, small_config, sphere_samples

    cfg = small_config(resolution=4)
    decoder = random_decoder(cfg)
    scene = make_scene(sphere_samples(500), cfg)
    with torch.no_grad():
        scene.grid.codes.copy_(torch.randn(scene.grid.codes.shape, generator=torch.Generator().manual_seed(0)))
    start = scene.grid.codes.detach().clone()
    after_steps = []
    adam_step = CodeAdam.step

    def step_and_record(self):
        adam_step(self)
        after_steps.append(self.params[0].detach().clone())

    monkeypatch.setattr(CodeAdam, "step", step_and_record)
    fit_codes(decoder, scene, replace_section(cfg, "fit", steps=4, average=0.75))
    expected = start
    for codes in after_steps:
        expected = 0.75 * expected + 0.25 * codes
    assert len(after_steps) == 4 and not torch.allclose(after_steps[-1], expected)
    torch.testing.assert_close(scene.grid.codes.detach(), expected)


def test_fit_codes_takes_the_weight_floor_of_its_settings():
    """Three steps from the same codes with and without a floor end apart: the setting reaches the backward."""
    import torch

    from sdfkit.config import replace_section
    from sdfkit.fit import fit_codes
    from sdfkit.scene import make_scene

    from helpers import random_decoder, small_config, sphere_samples

    cfg = small_config(resolution=4)
    decoder = random_decoder(cfg)
    ends = []
    for floor in (0.0, 0.1):
        scene = make_scene(sphere_samples(500), cfg)
        with torch.no_grad():
            scene.grid.codes.copy_(torch.randn(scene.grid.codes.shape, generator=torch.Generator().manual_seed(0)))
        fit_codes(decoder, scene, replace_section(cfg, "fit", steps=3, weight_floor=floor))
        ends.append(scene.grid.codes.detach().clone())
    assert not torch.allclose(ends[0], ends[1])
