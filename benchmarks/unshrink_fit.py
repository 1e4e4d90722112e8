"""``sdfkit fit`` on a noisy cloud of a val mesh, with or without ``unshrink``: the ablation of that one step.

    python -m benchmarks.unshrink_fit human_woman --noise 0.01 --seed 1 --out runs/hw-1pct-s1 [--off]

Samples the cloud as ``benchmarks/points.py`` does (``make_cloud``: area-weighted points with exact normals, Gaussian
noise of ``--noise`` x the bounding-box diagonal, cloud seed 0), writes it to ``OUT/cloud.npz`` and runs the user's
command on it, ``sdfkit fit OUT/cloud.npz --out OUT/fit --seed SEED``, in this process. ``--off`` replaces
:func:`data_prep.points.unshrink` by the identity, so the denoised points are the height-field projections alone
(the code before the step existed). ``--seed`` changes the fit's samples and batches, not the cloud: fits that
differ only in it show how much of a difference between variants is the fit's own spread. Score the meshes with
``benchmarks/chamfer_where.py`` or ``sdfkit eval``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mesh", help="a mesh of ../shared/meshes/val, by name")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--noise", type=float, default=0.01, help="noise deviation over the bounding-box diagonal")
    parser.add_argument("--seed", type=int, default=0, help="the fit's seed (the cloud's is 0)")
    parser.add_argument("--off", action="store_true", help="leave unshrink out")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import mesh_to_sdf  # noqa: F401  (before pyrender, which the preview imports)

    import data_prep.points as points
    from benchmarks.points import make_cloud
    from data_prep.mesh import load_mesh
    from sdfkit.cli import main as sdfkit_main

    cloud, normals = make_cloud(load_mesh(SHARED / "val" / f"{args.mesh}.obj"), args.count, args.noise, False)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "cloud.npz", points=cloud, normals=normals)
    if args.off:
        points.unshrink = lambda noisy, projected, *rest, **options: projected
    sys.argv = ["sdfkit", "fit", str(args.out / "cloud.npz"), "--out", str(args.out / "fit"), "--seed",
                str(args.seed), "--force"]
    sdfkit_main()


if __name__ == "__main__":
    main()
