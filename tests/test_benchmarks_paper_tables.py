"""Tables 3 and 6 of the baseline harness: summaries, shape choice, the per-scene overfit, the quick run."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.paper_tables import SCALES, TABLE3_METHODS, TABLE6_GLOBAL, TABLE6_LOCAL, score_trained, spread, summary
from sdfkit.config import GridConfig, ModelConfig, SdfkitConfig
from sdfkit.samples import load_or_prepare

REPO = Path(__file__).resolve().parents[1]


def test_summary_is_median_mean_and_sample_std_of_the_finite_values():
    values = [3.0, 1.0, math.nan, 10.0, 2.0]
    got = summary(values)
    finite = np.array([3.0, 1.0, 10.0, 2.0])
    assert got["median"] == pytest.approx(float(np.median(finite)))
    assert got["mean"] == pytest.approx(float(finite.mean()))
    assert got["std"] == pytest.approx(float(finite.std(ddof=1)))
    assert got["failed"] == 1
    assert summary([4.0])["std"] == 0.0
    empty = summary([math.nan, math.nan])
    assert math.isnan(empty["median"]) and empty["failed"] == 2


def test_spread_takes_evenly_strided_names_and_all_of_a_short_list():
    paths = [Path(f"m{i:02d}.ply") for i in range(10)]
    assert spread(list(reversed(paths)), 3) == [paths[0], paths[3], paths[6]]
    assert spread(paths, 10) == paths and spread(paths[:2], 5) == paths[:2]
    picked = spread(paths, 4)
    assert len(set(picked)) == 4 and picked == sorted(picked)


def test_whole_network_overfit_on_one_scene_scores_that_scene(sphere_mesh_file, tmp_path):
    """Table 6's global protocol: train decoder and code on one scene, then score the field the run ended with."""
    from benchmarks.run import train_method

    torch.set_num_threads(1)
    model = ModelConfig(kind="relu_concat", hidden=32, layers=3, latent_dim=4, skip_layer=1)
    cfg = SdfkitConfig(model=model, grid=GridConfig(layout="global"))
    cfg = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, num_points=6000), train=dataclasses.replace(cfg.train, steps=150, batch_points=1024, lr_decoder=3e-3,
                                                             log_every=50))
    npz = tmp_path / "sphere.npz"
    load_or_prepare(sphere_mesh_file, cfg.sampling, seed=0).save(npz)
    result = train_method(cfg, [npz], tmp_path / "run")
    scale = {"resolution": 32, "num_surface": 2000, "num_volume": 20000, "deepsdf": True}
    scored = score_trained(result, cfg, npz, sphere_mesh_file, scale)
    assert scored["codes"] == 1 and scored["steps"] == 150 and scored["mesh"] == "sphere"
    assert scored["iou"] > 0.9, scored
    assert math.isfinite(scored["deepsdf_chamfer"]) and scored["chamfer"] < 1e-3


def test_quick_scale_names_every_override():
    from benchmarks.paper_tables import OVERRIDES

    for scale in SCALES.values():
        assert set(OVERRIDES) <= set(scale)


@pytest.mark.slow
def test_quick_tables_run_and_write_their_results(shared_meshes, tmp_path):
    out = tmp_path / "out"
    for table in ("table3", "table6"):
        proc = subprocess.run([sys.executable, "-m", "benchmarks.paper_tables", table, "--quick", "--out", str(out)],
                              cwd=REPO, check=False, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    doc3 = json.loads((out / "baselines-table3-quick.json").read_text())
    assert list(doc3["categories"]) == ["airplanes", "chairs"] and doc3["machine"] and doc3["load_after"] >= 0
    for cat in doc3["categories"].values():
        assert list(cat["methods"]) == list(TABLE3_METHODS) and len(cat["train"]) == 2
        for row in cat["methods"].values():
            assert len(row["shapes"]) == 1 and {"median", "mean", "std"} <= set(row["deepsdf_chamfer"])
    doc6 = json.loads((out / "baselines-table6-quick.json").read_text())
    assert list(doc6["methods"]) == list(TABLE6_GLOBAL + TABLE6_LOCAL)
    for name, row in doc6["methods"].items():
        assert row["A"]["mesh"] == "scene_a" and row["B"]["mesh"] == "scene_b"
        if name in TABLE6_GLOBAL:  # whole network overfitted on Scene B for the scale's training steps
            assert row["B"]["steps"] == doc6["settings"]["train_steps"] and row["B"]["codes"] == 1
        else:  # codes only on Scene B, on the decoder trained on Scene A
            assert row["B"]["codes"] > 1 and "fit_s" in row["B"]
    assert "Scene B" in (out / "baselines-table6-quick.md").read_text()
    assert "DeepSDF CD" in (out / "baselines-table3-quick.md").read_text()
