"""Training under torchrun: two CPU processes (gloo) against one."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_prep.yaml_io import to_dict
from sdfkit.config import load_settings

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")


def run_workers(cfg, out: Path, processes: int) -> None:
    out.mkdir(parents=True)
    cfg_file = out / "cfg.json"
    cfg_file.write_text(json.dumps(to_dict(cfg)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           str(WORKER), str(cfg_file), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_processes_match_one(shared_meshes, tmp_path):
    cfg = load_settings(REPO / "configs" / "tiny.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, data=[str(shared_meshes / "val" / "torus.obj"), str(shared_meshes / "val" / "sphere.obj")],
        steps=10, checkpoint_every=5, log_every=5))
    run_workers(cfg, tmp_path / "two", 2)
    run_workers(cfg, tmp_path / "one", 1)
    rank0 = torch.load(tmp_path / "two" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "two" / "rank1.pt", weights_only=True)
    single = torch.load(tmp_path / "one" / "rank0.pt", weights_only=True)
    for key, value in rank0["state"].items():
        # Replicas stay identical: gradients are all-reduced every step.
        assert torch.equal(value, rank1["state"][key]), key
        # The same batches and mean loss as one process, up to reduction order.
        torch.testing.assert_close(value, single["state"][key], rtol=1e-4, atol=1e-5)
    losses_two = [loss for _, loss in rank0["history"]]
    losses_one = [loss for _, loss in single["history"]]
    assert losses_two == pytest.approx(losses_one, rel=1e-3)
    # Rank 0 alone wrote the files; the checkpoint holds both scenes.
    ckpt = torch.load(tmp_path / "two" / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 10 and len(ckpt["scenes"]) == 2
