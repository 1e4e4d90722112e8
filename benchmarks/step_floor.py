"""How far a fitting step is from what this machine's kernels allow.

A fitting step evaluates every (point, tile) row of the batch through the
synthesis network and back. Its unavoidable work per row and sine layer is
one sine (forward), one cosine (backward), the amplitude gather and
products, and two (hidden x hidden) matrix products (forward, and the
gradient to the layer's input), except that the first layer's products are
(3 x hidden). This script times each of those kernels alone on blocks of rows,
adds them up into a floor for one step, and sets it beside a measured step
of the same size.

    python -m benchmarks.step_floor [--rows 120000] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import write_result


def seconds_per_call(fn, repeats: int = 50) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def kernel_rates(hidden: int, block: int) -> dict[str, float]:
    """Seconds per row of each kernel, timed on (block, hidden) float32 tensors."""
    torch.manual_seed(0)
    a, b = torch.randn(block, hidden), torch.randn(block, hidden)
    weight, bias = torch.randn(hidden, hidden), torch.randn(hidden)
    table, index = torch.randn(8192, hidden), torch.randint(8192, (block,))
    out = torch.empty(block, hidden)
    grad_table = torch.zeros_like(table)
    timings = {
        "sin": seconds_per_call(lambda: torch.sin(a, out=out)),
        "cos": seconds_per_call(lambda: torch.cos(a, out=out)),
        "mul": seconds_per_call(lambda: torch.mul(a, b, out=out)),
        "matmul": seconds_per_call(lambda: torch.addmm(bias, a, weight.t(), out=out)),
        "gather": seconds_per_call(lambda: torch.index_select(table, 0, index, out=out)),
        "scatter_add": seconds_per_call(lambda: grad_table.index_add_(0, index, a)),
    }
    return {k: v / block for k, v in timings.items()}


def floor_per_row(rates: dict[str, float], layers: int) -> float:
    """Seconds per row of a forward and backward pass that does only the unavoidable kernels."""
    per_layer = rates["sin"] + rates["cos"] + rates["gather"] + rates["scatter_add"] + 4 * rates["mul"]
    return layers * per_layer + 2 * (layers - 1) * rates["matmul"]


def measured_step(rows: int, hidden: int, layers: int, codes: int) -> float:
    """Seconds of one synthesis forward + backward to the codes over ``rows`` rows (the step's core)."""
    from sdfkit.models.siren import ModulatedSiren

    torch.manual_seed(0)
    decoder = ModulatedSiren(hidden=hidden, layers=layers, latent_dim=64).requires_grad_(False)
    z = (torch.randn(codes, 64) * 0.01).requires_grad_()
    x, index, weight = torch.rand(rows, 3) * 2 - 1, torch.randint(codes, (rows,)), torch.randn(rows)

    def step():
        z.grad = None
        (decoder.synthesis(x, decoder.amplitudes(z), index) * weight).sum().backward()

    return seconds_per_call(step, repeats=5)


def main() -> None:
    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=120_000, help="(point, tile) rows of the step (a penguin fit: ~120k)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--block", type=int, default=8192, help="rows per timed kernel call")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default="step_floor-cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rates = kernel_rates(args.hidden, args.block)
    floor = floor_per_row(rates, args.layers) * args.rows
    step = measured_step(args.rows, args.hidden, args.layers, codes=5500)
    for name, rate in rates.items():
        speed = (f"{2 * args.hidden**2 / rate / 1e9:.1f} GFLOP/s" if name == "matmul"
                 else f"{args.hidden / rate / 1e9:.2f} G values/s")
        print(f"{name:12s} {rate * 1e9:7.2f} ns per row of {args.hidden}  ({speed})")
    print(f"floor of a step of {args.rows} rows: {floor:.3f} s; measured: {step:.3f} s ({step / floor:.2f}x the floor); "
          f"{torch.get_num_threads()} threads")
    write_result(args.name, {"rows": args.rows, "hidden": args.hidden, "layers": args.layers, "threads": torch.get_num_threads(),
                             "ns_per_row": {k: v * 1e9 for k, v in rates.items()},
                             "matmul_gflops": 2 * args.hidden**2 / rates["matmul"] / 1e9,
                             "floor_s": floor, "measured_s": step, "measured_over_floor": step / floor})


if __name__ == "__main__":
    main()
