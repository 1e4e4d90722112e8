"""Seconds per refinement step at each ``fit.weight_floor``, from the same prepared fit, in one process.

For each mesh the command's preparation runs once (read, sample, encode); then rounds of ``--steps`` Adam steps
from the encoder's codes run at each floor in turn, ``--rounds`` times, so every floor sees the same load. The row
gives the median and the spread of the rounds' seconds per step, the share of the samples' tile rows below the
floor (those that skip their backward) and their share of the blend's weight. The Chamfer each floor reaches is the user's command's: run
``benchmarks.fast_fit`` with ``--variants encoder:225/weight_floor=F``.

    python -m benchmarks.weight_floor                                    # penguin, floors 0, 0.02, 0.05, 0.1
    python -m benchmarks.weight_floor --meshes penguin torus --floors 0 0.05 --rounds 6
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import prepared_val_fit, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", default=["penguin"], help="names in ../shared/meshes/val")
    parser.add_argument("--floors", nargs="*", type=float, default=[0.0, 0.02, 0.05, 0.1])
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--name", default="weight_floor")
    args = parser.parse_args()

    import torch

    from sdfkit.config import replace_section
    from sdfkit.fit import fit_codes

    rows, cells = [], []
    for name in args.meshes:
        prepared = prepared_val_fit(name)
        scene, decoder = prepared.scene, prepared.decoder
        start = scene.grid.codes.detach().clone()
        weights = scene.grid.corners(scene.points)[2]
        seconds: dict[float, list[float]] = {floor: [] for floor in args.floors}
        fit_codes(decoder, scene, replace_section(prepared.cfg, "fit", steps=3))  # first-call costs, untimed
        for _ in range(args.rounds):
            for floor in args.floors:
                cfg = replace_section(prepared.cfg, "fit", steps=args.steps, weight_floor=floor)
                with torch.no_grad():
                    scene.grid.codes.copy_(start)
                t = time.perf_counter()
                fit_codes(decoder, scene, cfg)
                seconds[floor].append((time.perf_counter() - t) / args.steps)
        base = statistics.median(seconds[args.floors[0]])
        for floor in args.floors:
            median = statistics.median(seconds[floor])
            below = weights < floor
            light = float(below.float().mean())
            share = float((weights * below).sum() / weights.sum())
            rows.append({"mesh": name, "codes": scene.grid.num_codes, "floor": floor, "light_rows": light,
                         "light_weight": share, "seconds_per_step": seconds[floor], "median": median})
            cells.append([name, f"{scene.grid.num_codes:,}", floor, f"{light:.0%}", f"{share:.1%}",
                          f"{median * 1000:.1f}",
                          f"{min(seconds[floor]) * 1000:.1f}-{max(seconds[floor]) * 1000:.1f}",
                          f"{median / base:.2f}"])
    write_table(args.name, "Refinement seconds per step at each weight floor",
                f"{args.rounds} rounds of {args.steps} steps per floor, floors in turn within each round, "
                f"torch threads {torch.get_num_threads()}; light rows: the samples' tile rows below the floor, and "
                "their share of the blend's weight.",
                ["mesh", "codes", "weight floor", "light rows", "their weight", "ms per step (median)", "range",
                 "against first"],
                cells, {"rows": rows})


if __name__ == "__main__":
    main()
