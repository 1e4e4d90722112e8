"""benchmarks/fast_fit.py: a variant's settings reach the fit's config file as the fit reads them."""

from __future__ import annotations

import yaml

from benchmarks.fast_fit import parse_variant, yaml_value
from data_prep.yaml_io import from_dict
from sdfkit.config import FitConfig


def test_a_variants_settings_are_read_back_by_the_fit_config():
    init, steps, budget, optimizer, fit = parse_variant("encoder:400@30+lm/compile=true,lr=0.05,batch_points=4096")
    assert (init, steps, budget, optimizer) == ("encoder", 400, 30.0, "lm")
    assert fit == {"compile": True, "lr": 0.05, "batch_points": 4096} and isinstance(fit["batch_points"], int)
    text = "".join(f"{name}: {yaml_value(value)}\n" for name, value in fit.items())
    read = from_dict(FitConfig, yaml.safe_load(text))
    assert (read.compile, read.lr, read.batch_points) == (True, 0.05, 4096)
    assert parse_variant("random:600")[4] == {} and parse_variant("encoder:0/compile=false")[4] == {"compile": False}
    words = parse_variant("random:600/precision=fp32")[4]
    assert words == {"precision": "fp32"}
    assert from_dict(FitConfig, yaml.safe_load(f"precision: {yaml_value(words['precision'])}\n")).precision == "fp32"
    # A file path keeps its slashes and dots: it becomes the command's --encoder, not a config setting.
    assert parse_variant("encoder:400/encoder=runs/enc.v2.pt,lr=0.03")[4] == {"encoder": "runs/enc.v2.pt", "lr": 0.03}


def test_the_reference_is_the_600_step_fit_from_noise_in_any_precision():
    from benchmarks.fast_fit import with_ratios

    def row(init: str, steps: int, chamfer: float, **settings) -> dict:
        return {"mesh": "m.obj", "init": init, "steps_asked": steps, "max_seconds": None, "fit_settings": settings,
                "chamfer": chamfer}

    rows = with_ratios([row("random", 600, 2.0, precision="fp32"), row("random", 600, 1.0, lr=0.1),
                        row("encoder", 250, 3.0)])
    assert [r["cd_over_reference"] for r in rows] == [1.0, 0.5, 1.5]
    alone = with_ratios([row("random", 600, 1.0, lr=0.1), row("encoder", 250, 3.0)])
    assert all(r["cd_over_reference"] != r["cd_over_reference"] for r in alone)  # nan: no reference
