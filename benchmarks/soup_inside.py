"""How far the IoU's inside test can be trusted on CAD soup: the ground truth's own winding numbers.

``sdfkit.metrics.volumetric_iou`` labels each of its 1,000,000 points inside a mesh when the generalized winding
number exceeds 1/2 in absolute value. On a closed surface the number is 0 or 1; on soup (open sheets, holes,
overlapping parts) it takes values in between, and a point whose GT number lies near 1/2 has a label decided by
holes. For each mesh this counts, over exactly the IoU's points (same seed, same box), the points GT calls inside and
those whose GT winding number is ambiguous (|w| in [0.25, 0.75], the manifest's band), as a share of the points
inside: the IoU cannot be trusted to better than about that share.

    python -m benchmarks.soup_inside --meshes ../shared/meshes/airplanes/val/*.ply --name soup_inside-airplanes-val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import machine, write_result, write_result_text


def measure(path: Path) -> dict:
    from data_prep.manifest import AMBIGUOUS_WINDING
    from data_prep.mesh import load_mesh
    from data_prep.sdf import winding_number
    from sdfkit.metrics import to_gt_frame, volume_samples

    gt = load_mesh(path)
    _, unit = to_gt_frame(gt, gt)
    points = volume_samples(unit)
    w = np.abs(winding_number(np.asarray(unit.vertices), np.asarray(unit.faces), points))
    inside = int(np.count_nonzero(w > 0.5))
    lo, hi = AMBIGUOUS_WINDING
    ambiguous = int(np.count_nonzero((w >= lo) & (w <= hi)))
    return {"mesh": path.stem, "faces": len(unit.faces), "points": len(points), "inside": inside,
            "ambiguous": ambiguous, "ambiguous_over_inside": ambiguous / inside if inside else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", type=Path, required=True)
    parser.add_argument("--name", default="soup_inside")
    args = parser.parse_args()
    rows = []
    for path in args.meshes:
        rows.append(measure(path))
        r = rows[-1]
        print(f"{r['mesh']:36s} inside {r['inside']:7d}  ambiguous {r['ambiguous']:6d}  "
              f"({r['ambiguous_over_inside']:.2%} of inside)", flush=True)
    lines = [f"# The IoU's inside test on soup: GT winding numbers at the IoU's points\n\nMachine: {machine()}. "
             "Points: the 1,000,000 of `sdfkit.metrics.volume_samples` (GT unit frame, box padded by 5%). Ambiguous: "
             "|w| in [0.25, 0.75].", "", "| mesh | faces | inside | ambiguous | ambiguous / inside |", "|---|---|---|---|---|"]
    lines += [f"| {r['mesh']} | {r['faces']} | {r['inside']} | {r['ambiguous']} | {r['ambiguous_over_inside']:.2%} |"
              for r in rows]
    shares = [r["ambiguous_over_inside"] for r in rows]
    lines += ["", f"Median ambiguous / inside: {np.median(shares):.2%}; largest: {max(shares):.2%}."]
    write_result(args.name, {"rows": rows})
    write_result_text(args.name, ".md", "\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))


if __name__ == "__main__":
    main()
