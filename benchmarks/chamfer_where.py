"""Where a fit's Chamfer comes from: each side's share held by its worst samples, and where those lie.

    python -m benchmarks.chamfer_where --pair LABEL GT.obj FIT/mesh.obj [--pair ...] --name NAME

Scores each fitted mesh against its ground truth as ``sdfkit eval`` does (both in GT's unit frame, 30,000 surface
samples a side, exact distances to the other surface), then splits each side of the Chamfer: the share of its sum
of squared distances held by the worst 1% and 5% of its samples, and the share held near its single worst sample. A
Chamfer that sits in a small share of samples is a local failure (a bridged gap, a lost thin part) rather than a
surface that is off everywhere.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import provenance, write_result, write_result_text
from data_prep.mesh import load_mesh
from sdfkit.metrics import NUM_SURFACE, SEED, distance_to_surface, surface_samples, to_gt_frame

#: Shares of the worst samples reported.
WORST = (0.01, 0.05)
#: Radius (GT unit frame) around the worst sample within which its neighbourhood's share is summed.
NEAR_WORST = 0.05


def side_summary(points: np.ndarray, distances: np.ndarray) -> dict:
    """One side of the Chamfer: (n, 3) samples and their (n,) distances to the other surface.

    Beside the worst samples' shares, the share held within :data:`NEAR_WORST` of the single worst sample tells a
    failure in one place (a bridged gap) from bad samples spread over the shape.
    """
    squared = np.square(distances)
    order = np.argsort(-squared)
    total = float(squared.sum())
    worst = points[order[0]]
    near = np.linalg.norm(points - worst, axis=1) < NEAR_WORST
    return {
        "mean_squared": float(squared.mean()),
        "median_distance": float(np.median(distances)),
        **{f"share_worst_{int(f * 100)}pct": float(squared[order[: int(len(points) * f)]].sum() / total)
           for f in WORST},
        "worst_sample": worst.round(3).tolist(),
        "share_near_worst": float(squared[near].sum() / total),
    }


def where(gt_path: Path, fit_path: Path) -> dict:
    """Both sides of the Chamfer between the mesh at ``fit_path`` and its ground truth at ``gt_path``."""
    fit, gt = to_gt_frame(load_mesh(fit_path), load_mesh(gt_path))  # read as `sdfkit eval` reads them
    on_gt, _ = surface_samples(gt, NUM_SURFACE, SEED)
    on_fit, _ = surface_samples(fit, NUM_SURFACE, SEED + 1)
    gt_to_fit = side_summary(on_gt, distance_to_surface(on_gt, fit)[0])
    fit_to_gt = side_summary(on_fit, distance_to_surface(on_fit, gt)[0])
    return {"chamfer": gt_to_fit["mean_squared"] + fit_to_gt["mean_squared"], "gt_to_fit": gt_to_fit,
            "fit_to_gt": fit_to_gt}


def cloud_facts(fit_path: Path) -> dict:
    """The noise ratio and denoising of a point-cloud fit, from the ``report.json`` beside its mesh ({} if none)."""
    report = fit_path.parent / "report.json"
    cloud = json.loads(report.read_text()).get("point_cloud", {}) if report.is_file() else {}
    return {k: cloud[k] for k in ("noise_ratio", "denoised") if k in cloud}


def markdown(rows: list[dict]) -> str:
    info = provenance()
    lines = [f"`{info['command']}` at commit {info['commit']}, {info['date']}, on {info['machine']} (load average "
             f"{info['load_before']} before, {info['load_after']} after). Both meshes in the GT's unit frame, "
             f"{NUM_SURFACE:,} surface samples a side; a share is of that side's sum of squared distances; near the "
             f"worst: within {NEAR_WORST} of that side's worst sample.", "",
             "| fit | cloud noise ratio | CD | side | mean squared | median distance | worst 1% share | worst 5% share "
             "| worst sample | share near the worst |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for side in ("gt_to_fit", "fit_to_gt"):
            s = row[side]
            lines.append(f"| {row['label']} | {row.get('noise_ratio', '-')} | {row['chamfer']:.3e} "
                         f"| {side.replace('_', ' ')} | {s['mean_squared']:.3e} | {s['median_distance']:.2e} "
                         f"| {s['share_worst_1pct']:.3f} | {s['share_worst_5pct']:.3f} | {s['worst_sample']} "
                         f"| {s['share_near_worst']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=3, action="append", required=True, metavar=("LABEL", "GT", "FIT"),
                        help="a label, the ground-truth mesh and the fitted mesh")
    parser.add_argument("--name", default="chamfer_where")
    args = parser.parse_args()
    rows = []
    for label, gt_path, fit_path in args.pair:
        row = {"label": label, "gt": gt_path, "fit": fit_path, **where(Path(gt_path), Path(fit_path)),
               **cloud_facts(Path(fit_path))}
        side = row["gt_to_fit"]
        print(f"{label}: CD {row['chamfer']:.3e}; GT -> fit: worst 1% of samples hold {side['share_worst_1pct']:.3f}, "
              f"{side['share_near_worst']:.3f} within {NEAR_WORST} of {side['worst_sample']}")
        rows.append(row)
    path = write_result(args.name, {"rows": rows})
    write_result_text(args.name, ".md", markdown(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
