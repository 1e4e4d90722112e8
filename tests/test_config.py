"""``sdfkit.config``: the schema checks its values however they arrive, and every shipped config loads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from data_prep.errors import SdfkitError
from data_prep.sampling import PRESETS
from data_prep.yaml_io import from_dict, to_dict
from sdfkit.config import (
    FitConfig,
    GridConfig,
    SamplingChoice,
    SdfkitConfig,
    TrainConfig,
    load_settings,
    replace_section,
)

from helpers import REPO

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_shipped_config_loads_and_round_trips(path: Path):
    cfg = load_settings(path)
    assert from_dict(SdfkitConfig, to_dict(cfg)) == cfg


@pytest.mark.parametrize("build, message", [
    (lambda: FitConfig(steps=0), "--steps"),
    (lambda: FitConfig(batch_points=0), "--batch-points"),
    (lambda: FitConfig(resolution=8), "--resolution.* between 16 and 2048, got 8"),
    (lambda: FitConfig(resolution=2049), "between 16 and 2048, got 2049"),
    (lambda: FitConfig(precision="fp16"), "unknown precision 'fp16'"),  # type: ignore[arg-type]
    (lambda: TrainConfig(precision="auto"), "unknown precision 'auto'"),  # type: ignore[arg-type]
    (lambda: FitConfig(refine_surface_fraction=1.5), "surface_fraction"),
    (lambda: FitConfig(refine_weight_floor=0.2), "weight_floor"),
    (lambda: FitConfig(weight_floor=-0.01), "weight_floor"),
    (lambda: FitConfig(average=1.0), "average"),
    (lambda: FitConfig(refine_average=-0.1), "average"),
    (lambda: FitConfig(surface_fraction=-0.1), "surface_fraction"),
    (lambda: FitConfig(surface_band=0.0), "surface_band"),
    (lambda: FitConfig(normal_weight=-0.1), "normal_weight"),
    (lambda: FitConfig(normal_points=0), "normal_points"),
    (lambda: FitConfig(normal_every=0), "normal_every"),
    (lambda: TrainConfig(precision="half"), "unknown precision 'half'"),  # type: ignore[arg-type]
    (lambda: GridConfig(resolution=0), "--grid-resolution.* between 1 and 256, got 0"),
    (lambda: GridConfig(resolution=257), "between 1 and 256, got 257"),
    (lambda: GridConfig(min_codes_per_object=-1), "min_codes_per_object must be at least 0, got -1"),
])
def test_bad_values_are_one_line(build, message):
    with pytest.raises(SdfkitError, match=message):
        build()


def test_the_same_checks_apply_to_yaml_and_to_overrides():
    with pytest.raises(SdfkitError, match="between 16 and 2048"):
        from_dict(SdfkitConfig, {"fit": {"resolution": 4}})
    with pytest.raises(SdfkitError, match="between 1 and 256"):
        replace_section(SdfkitConfig(), "grid", resolution=1000)
    with pytest.raises(SdfkitError, match="unknown config key 'fit.stepz'"):
        from_dict(SdfkitConfig, {"fit": {"stepz": 3}})
    # None means "keep": an override of None changes nothing.
    assert replace_section(SdfkitConfig(), "fit", steps=None, lr=0.5).fit == dataclasses.replace(FitConfig(), lr=0.5)


def test_a_sampling_choice_resolves_to_its_preset_with_overrides():
    assert SamplingChoice().resolve() == dataclasses.replace(PRESETS["default"], seed=0)
    got = SamplingChoice(preset="deepsdf", num_points=1234, volume="bbox").resolve(seed=7)
    assert got == dataclasses.replace(PRESETS["deepsdf"], num_points=1234, volume="bbox", seed=7)
    with pytest.raises(SdfkitError, match="unknown sampling preset 'nope'"):
        SamplingChoice(preset="nope").resolve()
