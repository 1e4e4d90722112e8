"""Training and fitting throughput of the method, in point-evaluations per second.

A point-evaluation is one sample point through its 8 tiles (amplitudes once per
tile, synthesis per point and tile), forward and backward, as in a training
step. Also reports the achieved FLOP rate, so the gap to the hardware's peak is
a number.

    python -m benchmarks.throughput [--device cuda] [--points 262144] [--compile] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from benchmarks.common import RESULTS, machine, write_result, write_result_text
from data_prep.files import atomic_write_text
from sdfkit.config import ModelConfig
from sdfkit.loss import scene_loss
from sdfkit.models import make_decoder
from sdfkit.models.latent_grid import GridSpec, LatentGrid
from sdfkit.runtime import resolve_device


def flops_per_point(cfg: ModelConfig) -> float:
    """Multiply-adds x 2 of the synthesis for 8 tiles, forward + backward (about 3x forward)."""
    h, layers = cfg.hidden, cfg.layers
    macs = 3 * h + (layers - 1) * h * h + h
    return 8 * 2 * macs * 3


def make_grid(latent_dim: int, device: torch.device, resolution: int = 64) -> LatentGrid:
    spec = GridSpec.around(np.full(3, -0.9), np.full(3, 0.9), resolution)
    active = np.ones(spec.num_vertices, dtype=bool)
    return LatentGrid(spec, active, np.ones(spec.num_vertices, np.float32), latent_dim).to(device)


def measure(cfg: ModelConfig, device: torch.device, points: int, train_decoder: bool, compile_step: bool,
            precision: str, repeats: int = 20) -> float:
    torch.manual_seed(0)
    decoder = make_decoder(cfg).to(device)
    grid = make_grid(cfg.latent_dim, device)
    params = [grid.codes] + (list(decoder.parameters()) if train_decoder else [])
    if not train_decoder:
        for p in decoder.parameters():
            p.requires_grad_(False)
    optimizer = torch.optim.Adam(params, lr=1e-3)
    lo, hi = grid.spec.bounds
    pts = torch.tensor(np.random.default_rng(0).uniform(lo, hi, size=(points, 3)), dtype=torch.float32, device=device)
    sdf = torch.zeros(points, device=device).uniform_(-0.05, 0.05)
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = scene_loss(decoder, grid, pts, sdf, 1.0, 1e-4)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    fn = torch.compile(step) if compile_step else step
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return points * repeats / (time.perf_counter() - t0)


def main() -> None:
    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--points", type=int, default=None, help="points per step (default: 16384 CPU, 262144 GPU)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--precisions", nargs="*", default=None, choices=["fp32", "tf32", "bf16"],
                        help="default: fp32, tf32 and bf16 on a GPU, fp32 on the CPU")
    parser.add_argument("--name", default=None, help="result file name")
    parser.add_argument("--render", default=None, metavar="NAME",
                        help="only write results/NAME.md, the table of the measured results/NAME.json")
    args = parser.parse_args()
    if args.render:
        source = RESULTS / f"{args.render}.json"
        text = markdown(json.loads(source.read_text()), source.name)
        atomic_write_text(source.with_suffix(".md"), text)
        print(text)
        return
    device = resolve_device(args.device)
    points = args.points or (262144 if device.type == "cuda" else 16384)
    cfg = ModelConfig(hidden=args.hidden, layers=args.layers)
    repeats = 20 if device.type == "cuda" else 3
    precisions = args.precisions or (["fp32", "tf32", "bf16"] if device.type == "cuda" else ["fp32"])
    rows = []
    for mode in ("fit", "train"):
        for precision in precisions:
            for compiled in ([False, True] if args.compile else [False]):
                try:
                    rate = measure(cfg, device, points, mode == "train", compiled, precision, repeats)
                except Exception as exc:  # a variant that cannot run here is reported, not fatal
                    print(f"{mode} {precision} compile={compiled}: failed ({type(exc).__name__}: {str(exc)[:100]})")
                    continue
                tflops = rate * flops_per_point(cfg) / 1e12
                rows.append({"mode": mode, "precision": precision, "compile": compiled, "points_per_s": rate,
                             "tflops": tflops})
                print(f"{mode:5s} {precision:4s} compile={str(compiled):5s} {rate / 1e6:8.3f} M points/s  {tflops:7.2f} TFLOP/s")
    name = args.name or f"throughput-{device.type}"
    doc = {"device": str(device), "points_per_step": points, "model": vars(cfg) if hasattr(cfg, "__dict__") else {},
           "flops_per_point": flops_per_point(cfg), "rows": rows}
    path = write_result(name, doc)
    write_result_text(name, ".md", markdown({**doc, "machine": machine()}, path.name))
    print(f"machine: {machine()}\nwrote {path} and its .md")


def markdown(doc: dict, source: str) -> str:
    """The table BENCHMARKS.md quotes, from a throughput results document: rates in M points/s on a GPU and in
    k points/s on the CPU, as the text quotes them."""
    gpu = doc["device"].startswith("cuda")
    unit, scale = ("M points/s", 1e6) if gpu else ("k points/s", 1e3)
    lines = [f"Throughput, {doc['machine']}, {doc['points_per_step']} points per step (from {source}).", "",
             f"| step | precision | torch.compile | {unit} | TFLOP/s |", "|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['mode']} | {r['precision']} | {'yes' if r['compile'] else 'no'} | "
                     f"{r['points_per_s'] / scale:.2f} | {r['tflops']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
