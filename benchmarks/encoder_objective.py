"""What an encoder should be trained on: the per-tile objective against the blended fitting loss.

    python -m benchmarks.encoder_objective [--mesh ../shared/meshes/val/penguin.obj] [--steps 400]

An encoder predicts each tile's code. It can be trained to make every tile fit the signed distance over its own
region on its own (the per-tile objective: sum_k w_k |f_k(x) - s(x)| over the 8 tiles around a sample, one decoder
row per pair), or to make the blend of the 8 tiles fit it (the fitting loss itself). This script finds the best codes
under each objective by optimising them directly, from the same start (the shipped encoder's codes), with the
shipped decoder frozen, and scores both code tables under both objectives on the same fixed samples: the per-tile
objective's optimum is what an ideal encoder trained on it would give.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import SHARED, machine, write_result, write_result_text


def per_tile_terms(decoder, grid, points, sdf, band, amps):
    """(rows,) per-(sample, tile) clamped L1 and (rows,) the tiles' weights, for the samples' active tiles."""
    from sdfkit.loss import clamped_l1_terms

    code, local, weight, _ = grid.corners(points)
    active = code >= 0
    pred = decoder.synthesis(local[active], amps, code[active])
    target = (sdf / grid.spec.cell)[:, None].expand_as(code)[active]
    return clamped_l1_terms(pred, target, band), weight[active]


def score(decoder, scene, band, codes, count=1 << 15):
    """(per-tile objective, blended L1) of ``codes`` on a fixed draw of ``count`` samples, in cells."""
    from sdfkit.encoder import sample_l1

    with torch.no_grad():
        scene.grid.codes.copy_(codes)
        gen = torch.Generator().manual_seed(1)
        idx = torch.randint(len(scene.points), (count,), generator=gen)
        terms, weight = per_tile_terms(decoder, scene.grid, scene.points[idx], scene.sdf[idx], band,
                                       decoder.amplitudes(codes))
        return float((terms * weight).sum() / weight.sum()), sample_l1(decoder, scene, band, count=count)


def optimise(decoder, scene, cfg, start, steps, per_tile: bool):
    """Codes after ``steps`` Adam steps on one objective from ``start`` (the fit's rate, batch and schedule)."""
    from sdfkit.fit import fit_batch_points, fit_codes
    from sdfkit.optim import cosine_factor

    with torch.no_grad():
        scene.grid.codes.copy_(start)
    if not per_tile:
        fit_codes(decoder, scene, cfg)
        return scene.grid.codes.detach().clone()
    codes = scene.grid.codes
    optimizer = torch.optim.Adam([codes], lr=cfg.fit.lr)
    gen = torch.Generator().manual_seed(cfg.fit.seed)
    batch = fit_batch_points(cfg, scene.grid.num_codes)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cfg.fit.lr * cosine_factor(step / steps, cfg.fit.lr_final_fraction)
        idx = torch.randint(len(scene.points), (batch,), generator=gen)
        terms, weight = per_tile_terms(decoder, scene.grid, scene.points[idx], scene.sdf[idx], cfg.loss.band,
                                       decoder.amplitudes(codes))
        loss = (terms * weight).sum() / weight.sum() + cfg.loss.code_reg * codes.pow(2).sum() / len(codes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return codes.detach().clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default=str(SHARED / "val" / "penguin.obj"))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    from benchmarks.common import shipped_fit_scene
    from data_prep.sdf import MeshSDF
    from sdfkit.code_init import encoder_codes
    from sdfkit.decoder_io import load_decoder
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    decoder, cfg, scene, unit = shipped_fit_scene(args.mesh, args.steps)
    for p in decoder.parameters():
        p.requires_grad_(False)
    _, _, dec_id = load_decoder(None)
    start = encoder_codes(scene, dec_id, MeshSDF(unit))
    rows = {"encoder (start)": score(decoder, scene, cfg.loss.band, start)}
    seconds = {}
    for name, per_tile in (("optimised on the blend (the fit)", False), ("optimised per tile", True)):
        t0 = time.perf_counter()
        codes = optimise(decoder, scene, cfg, start, args.steps, per_tile)
        seconds[name] = round(time.perf_counter() - t0, 1)
        rows[name] = score(decoder, scene, cfg.loss.band, codes)
        print(name, rows[name], flush=True)
    mesh = args.mesh.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    lines = [f"# Per-tile objective against the blended fitting loss: {mesh}", "",
             f"Machine: {machine()}. Codes optimised directly with the shipped decoder frozen, {args.steps} Adam "
             f"steps at the fit's rate and batch ({scene.grid.num_codes:,} codes), from the shipped encoder's codes; "
             "both objectives on the same 32,768 samples, in cells.", "",
             "| codes | per-tile objective | blended L1 (the fit's loss) | seconds |", "|---|---|---|---|"]
    lines += [f"| {name} | {tile:.4f} | {blend:.4f} | {seconds.get(name, '-')} |" for name, (tile, blend) in rows.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    write_result(args.name or f"encoder-objective-{mesh}", {"mesh": args.mesh, "steps": args.steps,
                                                               "rows": {k: list(v) for k, v in rows.items()},
                                                               "seconds": seconds})
    write_result_text(args.name or f"encoder-objective-{mesh}", ".md", text)


if __name__ == "__main__":
    main()
