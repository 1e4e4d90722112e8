"""The quality limit: marching cubes of the exact SDF ("oracle"), and dense versus coarse-to-fine extraction.

For every mesh (default: ../shared/meshes/val/* and scene_a.obj): extract the
exact SDF of the normalised mesh at each resolution (coarse to fine, over the
normalised bounding box padded by 2 lattice cells), map it back to the input's
units and score it against the input under the project's protocol
(docs/metrics.md): Chamfer to the surface, IoU, F-score. At the timing
resolutions the dense path is run too; every extraction runs in its own
subprocess, which reports its wall time and peak resident memory (VmHWM),
and the two meshes are compared vertex by vertex.

    python -m benchmarks.oracle                                  # full table (hours on 2 cores)
    python -m benchmarks.oracle --skip-dense-512 scene_a         # no 134M-point dense run on the scene (~45 min)
    python -m benchmarks.oracle --quick                          # sphere and torus, 64 and 128, small samples
    python -m benchmarks.oracle --meshes ../shared/meshes/val/hand.obj --resolutions 128 256
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, RESULTS, SHARED, machine, result_stem, write_result, write_result_text
from data_prep.files import atomic_write_text

#: Lattice cells of padding around the normalised bounding box.
PAD_CELLS = 2


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), MB.

    Not ``ru_maxrss``: on Linux a child's ru_maxrss starts from its parent's
    resident size at fork, so it would report the (large) benchmark process.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec: dict) -> dict:
    """One extraction in this (fresh) process: time, peak memory and the mesh written to ``spec['out']``."""
    import numpy as np

    from data_prep.mesh import load_mesh, normalize_mesh
    from data_prep.sdf import MeshSDF
    from sdfkit.extract import extract_mesh, padded_bounds

    unit, norm = normalize_mesh(load_mesh(spec["mesh"]))
    bounds = padded_bounds(*unit.bounds, spec["resolution"], PAD_CELLS)
    field = MeshSDF(unit)
    calls = {"points": 0}

    def counted(points):
        calls["points"] += len(points)
        return field(points)

    before = peak_rss_mb()
    start = time.perf_counter()
    mesh = extract_mesh(counted, resolution=spec["resolution"], bounds=bounds,
                        coarse_to_fine=spec["mode"] == "coarse_to_fine", normalization=norm)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    np.savez(spec["out"], vertices=np.asarray(mesh.vertices), faces=np.asarray(mesh.faces))
    return {"seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": before,
            "evaluations": calls["points"], "faces": len(mesh.faces)}


def run_child(mesh: Path, resolution: int, mode: str, out: Path) -> dict:
    spec = {"mesh": str(mesh), "resolution": resolution, "mode": mode, "out": str(out)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.oracle", "--child", json.dumps(spec)],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} {resolution} on {mesh.name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_npz(path: Path):
    import numpy as np
    import trimesh

    data = np.load(path)
    return trimesh.Trimesh(data["vertices"], data["faces"], process=False)


def compare(a, b) -> dict:
    """Whether two extractions are the same mesh: same counts, largest vertex difference (input units)."""
    import numpy as np

    same = a.vertices.shape == b.vertices.shape and a.faces.shape == b.faces.shape
    diff = float(np.abs(np.asarray(a.vertices) - np.asarray(b.vertices)).max()) if same else float("nan")
    return {"same_counts": bool(same), "max_vertex_diff": diff,
            "same_faces": bool(same and np.array_equal(np.asarray(a.faces), np.asarray(b.faces)))}


def bench(meshes: list[Path], resolutions: list[int], timing: list[int], skip_dense: set[tuple[str, int]],
          num_surface: int, num_volume: int, work: Path, save) -> list[dict]:
    """Quality and timing rows, one per mesh; resolution by resolution, dense runs after that resolution's others,
    so that a long run (dense 512^3 is ~10 minutes a mesh on 2 cores) has its cheaper results written first."""
    from data_prep.mesh import load_mesh
    from sdfkit.metrics import evaluate_meshes

    gts = {path: load_mesh(path) for path in meshes}
    rows = {path: {"mesh": path.stem, "faces": len(gt.faces), "quality": {}, "timing": {}} for path, gt in gts.items()}
    for res in sorted(set(resolutions) | set(timing)):
        for path in meshes:
            c2f_file = work / f"{path.stem}-{res}-c2f.npz"
            c2f = run_child(path, res, "coarse_to_fine", c2f_file)
            if res in resolutions:
                t = time.perf_counter()
                m = evaluate_meshes(load_npz(c2f_file), gts[path], num_surface, num_volume)
                rows[path]["quality"][str(res)] = {**m, "metric_seconds": time.perf_counter() - t}
                print(f"  {path.stem:14s} {res:4d}^3  CD {m['chamfer']:.3e}  IoU {m['iou']:.5f}  F@1% {m['fscore_1pct']:.4f}  "
                      f"F@0.5% {m['fscore_05pct']:.4f}  (c2f {c2f['seconds']:.1f} s, {c2f['peak_rss_mb']:.0f} MB)", flush=True)
            if res in timing:
                rows[path]["timing"][str(res)] = {"coarse_to_fine": c2f}
            save(list(rows.values()))
        for path in meshes if res in timing else []:
            entry, c2f_file = rows[path]["timing"][str(res)], work / f"{path.stem}-{res}-c2f.npz"
            if (path.stem, res) in skip_dense:
                entry["dense"] = {"skipped": True}
                print(f"  {path.stem:14s} {res:4d}^3  dense skipped (by flag)", flush=True)
            else:
                dense_file = work / f"{path.stem}-{res}-dense.npz"
                entry["dense"] = d = run_child(path, res, "dense", dense_file)
                entry["dense_vs_coarse_to_fine"] = cmp = compare(load_npz(dense_file), load_npz(c2f_file))
                dense_file.unlink()
                c = entry["coarse_to_fine"]
                print(f"  {path.stem:14s} {res:4d}^3  dense {d['seconds']:.1f} s {d['peak_rss_mb']:.0f} MB  |  c2f "
                      f"{c['seconds']:.1f} s {c['peak_rss_mb']:.0f} MB  x{d['seconds'] / c['seconds']:.1f}  same mesh: {cmp}",
                      flush=True)
            save(list(rows.values()))
        for path in meshes:
            (work / f"{path.stem}-{res}-c2f.npz").unlink(missing_ok=True)
    return list(rows.values())


def _mb(run: dict) -> str:
    return f"{run['peak_rss_mb']:.0f} (+{run['peak_rss_mb'] - run['rss_before_mb']:.0f})"


def markdown(rows: list[dict], header: str, skipped: tuple[str, ...] = ()) -> str:
    res_q = sorted({int(r) for row in rows for r in row["quality"]})
    res_t = sorted({int(r) for row in rows for r in row["timing"]})
    lines = [header, "", "## Oracle quality (exact SDF, coarse to fine; GT unit frame)", "",
             "| mesh | faces | " + " | ".join(f"CD {r} | IoU {r} | F@1% {r} | F@0.5% {r}" for r in res_q) + " |",
             "|---|---|" + "---|---|---|---|" * len(res_q)]
    for row in rows:
        cells = []
        for r in res_q:
            m = row["quality"].get(str(r))
            cells.append(" | ".join(["-"] * 4) if m is None else
                         f"{m['chamfer']:.2e} | {m['iou']:.5f} | {m['fscore_1pct']:.4f} | {m['fscore_05pct']:.4f}")
        lines.append(f"| {row['mesh']} | {row['faces']} | " + " | ".join(cells) + " |")
    lines += ["", "## Dense versus coarse-to-fine extraction of the exact SDF", "",
              "MB: the extraction subprocess's peak resident memory (VmHWM), and in brackets its growth during "
              "the extraction (above the peak after loading the mesh and libraries).", "",
              "| mesh | res | dense s | dense MB | c2f s | c2f MB | speed-up | c2f evaluations | same mesh (max vertex diff) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for r in res_t:
            e = row["timing"].get(str(r))
            if e is None:
                continue
            pending = {"skipped": True} if f"{row['mesh']} at {r}^3" in skipped else {"pending": True}
            c, d = e["coarse_to_fine"], e.get("dense", pending)
            frac = c["evaluations"] / r**3
            if d.get("pending"):
                lines.append(f"| {row['mesh']} | {r} | (running) | | {c['seconds']:.1f} | {_mb(c)} | - | "
                             f"{c['evaluations']:,} ({frac:.1%}) | - |")
                continue
            if d.get("skipped"):
                lines.append(f"| {row['mesh']} | {r} | skipped | skipped | {c['seconds']:.1f} | {_mb(c)} | - | "
                             f"{c['evaluations']:,} ({frac:.1%}) | - |")
                continue
            cmp = e["dense_vs_coarse_to_fine"]
            same = f"yes ({cmp['max_vertex_diff']:.1e})" if cmp["same_counts"] else "no (counts differ)"
            lines.append(f"| {row['mesh']} | {r} | {d['seconds']:.1f} | {_mb(d)} | {c['seconds']:.1f} | "
                         f"{_mb(c)} | {d['seconds'] / c['seconds']:.1f}x | {c['evaluations']:,} ({frac:.1%}) | {same} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true", help="only rebuild results/<name>.md from results/<name>.json")
    parser.add_argument("--meshes", nargs="*", type=Path, default=None,
                        help="mesh files (default: every mesh in ../shared/meshes/val and scene_a.obj)")
    parser.add_argument("--resolutions", nargs="*", type=int, default=[128, 256, 512], help="oracle quality resolutions")
    parser.add_argument("--timing", nargs="*", type=int, default=[256, 512], help="dense vs coarse-to-fine resolutions")
    parser.add_argument("--skip-dense-512", nargs="*", default=[], metavar="MESH",
                        help="mesh names (file stems) whose dense 512^3 extraction is skipped, e.g. scene_a")
    parser.add_argument("--dense-max-faces", type=int, default=None,
                        help="skip dense extraction above 256^3 for meshes with more faces than this")
    parser.add_argument("--surface-points", type=int, default=30_000)
    parser.add_argument("--volume-points", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="sphere and torus, 64 and 128, 10k/200k samples")
    parser.add_argument("--name", default="oracle", help="result file name under benchmarks/results/")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.render:
        data = json.loads((RESULTS / f"{args.name}.json").read_text())
        skipped = data.get("skipped_dense") or []
        header = (f"# Oracle: marching cubes of the exact SDF\n\nMachine: {data['machine']} (shared; other jobs ran at the "
                  f"same time, so timings are noisy). Samples: {data['surface_points']} surface / {data['volume_points']} "
                  f"volume. Box: normalised bounding box padded by {data['pad_cells']} lattice cells."
                  + (f" Dense extraction skipped (by flag) for: {', '.join(skipped)}." if skipped else ""))
        # The table of an existing run, written beside its JSON (a rendering, not a new measurement).
        text = markdown(data["rows"], header, tuple(skipped))
        atomic_write_text(RESULTS / f"{args.name}.md", text)
        print(text)
        return
    meshes = args.meshes or sorted((SHARED / "val").glob("*.obj")) + [SHARED / "scene_a.obj"]
    if args.quick:
        meshes = args.meshes or [SHARED / "val" / "sphere.obj", SHARED / "val" / "torus.obj"]
        args.resolutions, args.timing, args.surface_points, args.volume_points = [64, 128], [128], 10_000, 200_000
        args.name = args.name if args.name != "oracle" else "oracle-quick"
    skip = {(name, 512) for name in args.skip_dense_512}
    if args.dense_max_faces is not None:
        from data_prep.mesh import load_mesh

        skip |= {(Path(p).stem, r) for p in meshes for r in args.timing
                 if r > 256 and len(load_mesh(p).faces) > args.dense_max_faces}
    skipped_names = sorted({f"{name} at {r}^3" for name, r in skip})
    header = (f"# Oracle: marching cubes of the exact SDF\n\nMachine: {machine()} (shared; other jobs ran at the same "
              f"time, so timings are noisy). Samples: {args.surface_points} surface / {args.volume_points} volume. "
              f"Box: normalised bounding box padded by {PAD_CELLS} lattice cells."
              + (f" Dense extraction skipped (by flag) for: {', '.join(skipped_names)}." if skip else ""))
    print(header, flush=True)

    def save(rows: list[dict]) -> None:
        # Written after every step so that a long run leaves its finished part behind.
        write_result(args.name, {"pad_cells": PAD_CELLS, "surface_points": args.surface_points,
                                 "volume_points": args.volume_points, "skipped_dense": skipped_names, "rows": rows})
        write_result_text(args.name, ".md", markdown(rows, header, tuple(skipped_names)))

    with tempfile.TemporaryDirectory() as tmp:
        rows = bench([Path(p) for p in meshes], args.resolutions, args.timing, skip, args.surface_points,
                     args.volume_points, Path(tmp), save)
    print(markdown(rows, header, tuple(skipped_names)))
    print(f"wrote {result_stem(args.name)}.json and .md")


if __name__ == "__main__":
    main()
