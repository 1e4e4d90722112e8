"""Profile one fitting step of the method (torch.profiler) and print the top operators.

    python -m benchmarks.profile_step [--device cpu] [--points 16384] [--name profile-cpu]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.common import machine, write_result, write_result_text


def main() -> None:
    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points", type=int, default=16384)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    from sdfkit.config import ModelConfig
    from sdfkit.loss import scene_loss
    from sdfkit.models import make_decoder
    from sdfkit.models.latent_grid import GridSpec, LatentGrid
    from sdfkit.runtime import resolve_device

    dev = resolve_device(args.device)
    torch.manual_seed(0)
    decoder = make_decoder(ModelConfig(hidden=args.hidden)).to(dev)
    for p in decoder.parameters():
        p.requires_grad_(False)
    spec = GridSpec.around(np.full(3, -0.9), np.full(3, 0.9), 32)
    grid = LatentGrid(spec, np.ones(spec.num_vertices, bool), np.ones(spec.num_vertices, np.float32), 64).to(dev)
    opt = torch.optim.Adam([grid.codes], lr=1e-2)
    pts = torch.rand(args.points, 3, device=dev) * 1.8 - 0.9
    sdf = torch.zeros(args.points, device=dev)

    def step():
        loss, _ = scene_loss(decoder, grid, pts, sdf, 1.0, 1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(3):
            step()
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=12)
    print(table)
    name = args.name or f"profile-{dev.type}"
    write_result(name, {"points": args.points, "table": table})
    write_result_text(name, ".txt", f"{machine()}, {args.points} points per step, 3 steps\n{table}\n")


if __name__ == "__main__":
    main()
