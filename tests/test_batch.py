"""Fitting a folder: per-mesh outputs, the summary, a bad mesh, and resuming after a kill (real subprocesses)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sdfkit.batch import summary_stats

REPO = Path(__file__).resolve().parents[1]
#: The shipped decoder's architecture, with few samples and steps so that a mesh fits in seconds on a CPU.
SMALL_FIT = """model: {hidden: 64, layers: 4, latent_dim: 64, w0: 30.0}
sampling: {preset: default, num_points: 20000, volume: bbox}
fit: {steps: 10, lr: 2.0e-2, resolution: 32}
"""


@pytest.fixture
def chair_folder(shared_meshes, tmp_path) -> Path:
    """Two of the smallest real chairs and one file that is not a mesh."""
    folder = tmp_path / "chairs"
    folder.mkdir()
    for name in ("sh3d_default_chair.ply", "scopia_children_chair.ply"):
        shutil.copy(shared_meshes / "chairs" / "train" / name, folder / name)
    (folder / "broken.obj").write_text("not a mesh\n")
    return folder


def _fit_cmd(folder: Path, out: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "sdfkit", "fit", str(folder), "--out", str(out), "--config", str(config),
            "--no-preview", "--quiet", "--device", "cpu"]


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_killed_folder_fit_resumes_with_only_the_missing_meshes(chair_folder, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_FIT)
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_fit_cmd(chair_folder, out, config), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reports = [out / "scopia_children_chair" / "report.json", out / "sh3d_default_chair" / "report.json"]
    deadline = time.monotonic() + 300
    while not any(r.is_file() for r in reports):
        assert proc.poll() is None, "the folder fit ended before finishing a mesh"
        assert time.monotonic() < deadline, "no mesh finished in 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [r for r in reports if r.is_file()]
    assert len(finished) == 1, "the kill came too late to leave a mesh unfinished"
    first_mtime = finished[0].stat().st_mtime_ns

    rerun = subprocess.run(_fit_cmd(chair_folder, out, config), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 1  # the bad mesh is reported, the others are fitted
    assert finished[0].stat().st_mtime_ns == first_mtime  # the finished mesh was not fitted again
    assert all(r.is_file() for r in reports)
    rows = {r["mesh"]: r for r in _read_csv(out / "summary.csv")}
    assert set(rows) == {"broken", "scopia_children_chair", "sh3d_default_chair"}
    assert rows["broken"]["status"] == "failed" and "no faces" in rows["broken"]["reason"]
    assert rows[finished[0].parent.name]["status"].startswith("skipped")
    missing = next(r for r in reports if r != finished[0]).parent.name
    assert rows[missing]["status"] == "fitted"
    assert "broken: failed" in rerun.stderr
    ious = [float(rows[n]["iou"]) for n in ("scopia_children_chair", "sh3d_default_chair")]
    md = (out / "summary.md").read_text()
    assert md.startswith("# Folder fit: 2 of 3 meshes fitted")
    median_row = next(line for line in md.splitlines() if line.startswith("| median |"))
    assert f"{np.median(ious):.4g}" in median_row.split("|")[-3]  # iou is the last metric before seconds
    assert not list(out.glob(".*tmp-*")) and not list(out.parent.glob(".runs.lock"))


def test_summary_stats_against_a_plain_loop():
    rows = [{"mesh": "a", "iou": 0.9, "seconds": 3.0}, {"mesh": "b", "iou": 0.5, "seconds": 1.0},
            {"mesh": "c", "iou": "", "seconds": ""}, {"mesh": "d", "iou": 0.7, "seconds": 2.0}]
    from sdfkit.metrics import METRIC_KEYS

    for r in rows:
        r.update({k: r.get(k, "") for k in METRIC_KEYS})
    stats = summary_stats(rows)
    values = [0.9, 0.5, 0.7]
    mean = sum(values) / 3
    assert stats["iou"]["median"] == pytest.approx(0.7)
    assert stats["iou"]["mean"] == pytest.approx(mean)
    assert stats["iou"]["std"] == pytest.approx((sum((v - mean) ** 2 for v in values) / 3) ** 0.5)
    assert stats["iou"]["count"] == 3
    assert "chamfer" not in stats


def test_folder_summary_in_occnets_convention(shared_meshes, tmp_path):
    from sdfkit.batch import fit_folder
    from sdfkit.fit import FitRequest

    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(shared_meshes / "chairs" / "train" / "sh3d_default_chair.ply", folder / "chair.ply")
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_FIT)
    opts = FitRequest(config=str(config), device="cpu", preview=False)
    rows, stats = fit_folder(folder, tmp_path / "out", opts, progress=False, conventions=("occnet",))
    assert 0 < rows[0]["occnet_iou"] <= 1 and stats["occnet_chamfer_l1"]["count"] == 1
    saved = json.loads((tmp_path / "out" / "chair" / "metrics-occnet.json").read_text())
    assert saved["occnet_chamfer_l1"] == rows[0]["occnet_chamfer_l1"]
    header = (tmp_path / "out" / "summary.csv").read_text().splitlines()[0].split(",")
    assert header.index("iou") < header.index("occnet_chamfer_l1") < header.index("steps")
    again, _ = fit_folder(folder, tmp_path / "out", opts, progress=False, conventions=("occnet",))
    assert again[0]["status"].startswith("skipped") and again[0]["occnet_iou"] == rows[0]["occnet_iou"]


def test_meshes_refined_in_one_batch_end_as_they_would_alone(chair_folder, tmp_path):
    """Two chairs whose codes are refined together get the codes each gets alone (each draws its own batches and
    follows its own loss); the bad mesh of the folder is still a row of its own."""
    from sdfkit.batch import fit_folder
    from sdfkit.fit import FitRequest
    from sdfkit.io import load_torch

    config = tmp_path / "small.yaml"
    config.write_text(SMALL_FIT)
    opts = FitRequest(config=str(config), device="cpu", preview=False, batch_shapes=3)
    rows, _ = fit_folder(chair_folder, tmp_path / "together", opts, progress=False)
    assert [r["status"] for r in rows] == ["failed", "fitted", "fitted"]  # broken, then the two chairs
    alone, _ = fit_folder(chair_folder, tmp_path / "alone", FitRequest(config=str(config), device="cpu",
                                                                       preview=False, batch_shapes=1), progress=False)
    for row in rows[1:]:
        report = json.loads((tmp_path / "together" / row["mesh"] / "report.json").read_text())
        assert report["batch"]["shapes"] == 2 and report["steps"] == 10
        assert report["threads"] == torch.get_num_threads()
        codes = [load_torch(tmp_path / kind / row["mesh"] / "latents.pt")["grid"]["codes"]
                 for kind in ("together", "alone")]
        assert codes[0].shape == codes[1].shape
        np.testing.assert_allclose(codes[0].numpy(), codes[1].numpy(), atol=1e-4)
    assert "batch" not in json.loads((tmp_path / "alone" / rows[1]["mesh"] / "report.json").read_text())
