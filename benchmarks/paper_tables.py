"""Mehta et al. 2021, Tables 3 and 6, with the baseline harness (``benchmarks/run.py``) at a named scale.

- ``table3``: per category (``../shared/meshes/<category>/``), every decoder of the paper's Table 3 (the global-code
  ReLU with a skip, SIREN + concat, Fourier features, the global modulated SIREN, and the local method) is trained on
  shapes of ``train/`` and fitted, codes only with the decoder frozen, to shapes of ``val/``. Median, mean and std of
  the Chamfer distance in sdfkit's convention and in DeepSDF's (``docs/metrics.md``), and of the IoU.
- ``table6``: the paper's protocol. Each global baseline (ReLU, SIREN, Fourier features) is overfitted, whole network
  and code, on each scene separately: Scene A (``scene_a.obj``) and Scene B (the val meshes composed into one scene).
  The local methods are trained on Scene A (their Scene A column) and fit codes only on Scene B.

Samples are drawn once per mesh and shared by every method.

    python -m benchmarks.paper_tables table3 --categories airplanes chairs   # the CPU scale (SCALES["cpu"])
    python -m benchmarks.paper_tables table6
    python -m benchmarks.paper_tables table6 --quick                        # tiny models and steps: a check
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import LOAD_BEFORE, SHARED, git_commit, write_result, write_result_text
from benchmarks.run import CD_UNIT, LABELS, fit_and_score, method_settings, prepare, score, train_method

#: The paper's Table 3 rows, in its order: four global codes, then the local method.
TABLE3_METHODS = ("deepsdf", "siren_concat", "fourier", "global_modsiren", "method")
#: Table 6: the global baselines overfitted per scene, and the local methods (codes only on Scene B).
TABLE6_GLOBAL = ("deepsdf", "siren_concat", "fourier")
TABLE6_LOCAL = ("local_relu", "method")
CATEGORIES = ("airplanes", "chairs")

#: ``model`` .. ``fit_batch`` are :func:`benchmarks.run.method_settings`'s; ``fit_steps`` is a codes-only fit's
#: steps, stopped early at ``fit_cap_s`` seconds; ``train_shapes`` / ``val_shapes`` are Table 3's counts per category.
SCALES = {
    "quick": {
        "model": {"hidden": 32, "layers": 3, "latent_dim": 16}, "deepsdf_hidden": 64, "num_points": 20000,
        "train_steps": 30, "train_batch": 2048, "cells_per_object": 6.0, "fit_batch": 2048, "fit_steps": 20,
        "fit_cap_s": 30.0, "resolution": 40, "num_surface": 5000, "num_volume": 20000, "train_shapes": 2,
        "val_shapes": 1, "scene_b": ["sphere", "torus"], "deepsdf": True,
    },
    "cpu": {
        "model": {}, "deepsdf_hidden": None, "num_points": 100000, "train_steps": 300, "train_batch": 8192,
        "cells_per_object": 12.0, "fit_batch": None, "fit_steps": 150, "fit_cap_s": 90.0, "resolution": 128,
        "num_surface": 30000, "num_volume": 300000, "train_shapes": 8, "val_shapes": 8, "scene_b": None,
        "deepsdf": True,
    },
}

#: Scale entries a command-line option may change (each recorded in the results file's settings).
OVERRIDES = ("train_steps", "fit_steps", "train_shapes", "val_shapes")


def spread(paths: list[Path], count: int) -> list[Path]:
    """``count`` of the sorted ``paths`` at even strides (names sort by maker, so the first few are alike)."""
    paths = sorted(paths)
    if count >= len(paths):
        return paths
    return [paths[(i * len(paths)) // count] for i in range(count)]


def summary(values: list[float]) -> dict:
    """Median, mean and (sample) std of the finite ``values``, and how many were not finite (no surface)."""
    ok = [v for v in values if math.isfinite(v)]
    if not ok:
        return {"median": math.nan, "mean": math.nan, "std": math.nan, "failed": len(values)}
    std = statistics.stdev(ok) if len(ok) > 1 else 0.0
    return {"median": statistics.median(ok), "mean": statistics.fmean(ok), "std": std, "failed": len(values) - len(ok)}


def cfg_at(name: str, scale: dict):
    """``configs/baselines/<name>.yaml`` at ``scale``, with the codes-only fit's step count."""
    from sdfkit.config import replace_section

    return replace_section(method_settings(name, scale), "fit", steps=scale["fit_steps"])


def score_trained(result, cfg, npz: Path, mesh: Path, scale: dict) -> dict:
    """Score the scene a training run ended with (its decoder and the code(s) in its checkpoint) against ``mesh``."""
    from data_prep.mesh import load_mesh
    from data_prep.sampling import SdfSamples
    from sdfkit.field import NeuralField
    from sdfkit.io import load_torch
    from sdfkit.models.latent_grid import LatentGrid

    state = load_torch(result.checkpoint_path, what="checkpoint")
    grid = LatentGrid.from_state(state["scenes"][0], str(result.checkpoint_path))
    field = NeuralField(result.decoder, grid, cfg.loss.band)
    scored = score(field, grid.spec.bounds, SdfSamples.load(npz), load_mesh(mesh), scale["resolution"], scale)
    return {"mesh": mesh.stem, "train_s": round(result.seconds, 2), "steps": result.steps, "codes": grid.num_codes,
            "train_l1": result.final_loss, **scored}


def table3(scale: dict, work: Path, categories: tuple[str, ...], methods: tuple[str, ...], log=print) -> dict:
    """Train each method on a category's train shapes and fit each val shape's codes; per-shape rows and summaries."""
    base = method_settings("method", scale)
    doc: dict = {"categories": {}}
    for category in categories:
        root = SHARED / category
        train_meshes = spread(list((root / "train").glob("*.ply")), scale["train_shapes"])
        val_meshes = spread(list((root / "val").glob("*.ply")), scale["val_shapes"])
        t0 = time.perf_counter()
        train_npz, val_npz = prepare(train_meshes, base, work), prepare(val_meshes, base, work)
        log(f"{category}: sampled {len(train_meshes)} train and {len(val_meshes)} val meshes "
            f"in {time.perf_counter() - t0:.1f} s")
        rows: dict[str, dict] = {}
        for name in methods:
            cfg = cfg_at(name, scale)
            result = train_method(cfg, train_npz, work / category / name)
            shapes = [fit_and_score(name, cfg, result.decoder, npz, mesh, scale["fit_cap_s"], scale)
                      for npz, mesh in zip(val_npz, val_meshes)]
            rows[name] = {"label": LABELS[name], "train_s": round(result.seconds, 2), "train_l1": result.final_loss,
                          "shapes": shapes,
                          **{key: summary([s[key] for s in shapes]) for key in ("chamfer", "deepsdf_chamfer", "iou")}}
            log(f"{category} {name:16s} train {result.seconds:6.1f} s  CD median "
                f"{rows[name]['chamfer']['median'] / CD_UNIT:9.2f}e-5  IoU median {rows[name]['iou']['median']:.3f}")
        doc["categories"][category] = {"train": [m.name for m in train_meshes], "val": [m.name for m in val_meshes],
                                       "methods": rows}
    return doc


def table6(scale: dict, work: Path, methods: tuple[str, ...] = TABLE6_GLOBAL + TABLE6_LOCAL, log=print) -> dict:
    """Scene A and Scene B for every method: global baselines overfitted per scene, local methods codes-only on B."""
    from data_prep.compose import compose_scene
    from sdfkit.export import export_mesh

    val = sorted((SHARED / "val").glob("*.obj"))
    if scale["scene_b"]:
        val = [SHARED / "val" / f"{v}.obj" for v in scale["scene_b"]]
    scene_a, scene_b = SHARED / "scene_a.obj", work / "scene_b.obj"
    export_mesh(compose_scene(val), scene_b)
    base = method_settings("method", scale)
    npz_a, npz_b = prepare([scene_a, scene_b], base, work)
    rows: dict[str, dict] = {}
    for name in methods:
        cfg = cfg_at(name, scale)
        trained = train_method(cfg, [npz_a], work / "table6" / name / "A")
        row = {"label": LABELS[name], "layout": cfg.grid.layout, "A": score_trained(trained, cfg, npz_a, scene_a, scale)}
        if name in TABLE6_GLOBAL:
            row["protocol_b"] = "whole network overfitted on Scene B"
            row["B"] = score_trained(train_method(cfg, [npz_b], work / "table6" / name / "B"), cfg, npz_b, scene_b,
                                     scale)
        else:
            row["protocol_b"] = "codes only, decoder trained on Scene A"
            row["B"] = fit_and_score(name, cfg, trained.decoder, npz_b, scene_b, scale["fit_cap_s"], scale)
        log(f"table6 {name:16s} A CD {row['A']['chamfer'] / CD_UNIT:9.2f}e-5  B CD {row['B']['chamfer'] / CD_UNIT:9.2f}e-5")
        rows[name] = row
    return {"scene_a": scene_a.name, "scene_b": [v.stem for v in val], "methods": rows}


def _num(value: float, unit: float = 1.0) -> str:
    return "fail" if not math.isfinite(value) else f"{value / unit:.4g}"


def scale_line(doc: dict) -> str:
    s = doc["settings"]
    return (f"Machine: {doc['machine']}, 1 torch thread, no GPU; load average {doc['load_before']} before, "
            f"{doc['load_after']} after; {doc['date']}; commit {doc['commit']}. Scale `{doc['scale']}` (a CPU scale, "
            f"far below the paper's): decoders {s['model'] or 'as in configs/baselines'}, {s['train_steps']} training "
            f"steps of {s['train_batch']} points, {s['num_points']} samples per mesh, local grids "
            f"{s['cells_per_object']:g} cells per object, codes-only fits of {s['fit_steps']} steps (stopped at "
            f"{s['fit_cap_s']:g} s), marching cubes {s['resolution']}^3, metrics on {s['num_surface']} surface / "
            f"{s['num_volume']} volume points. Run: `{doc['command']}` ({doc['seconds_total']:.0f} s).")


def markdown3(doc: dict) -> str:
    lines = ["## Table 3 (Mehta et al. 2021) on real CAD categories", "", scale_line(doc), "",
             "CD: sdfkit's Chamfer (squared distance to the other surface, both directions summed, GT's unit-sphere "
             "frame) x1e-5; DeepSDF CD: DeepSDF's convention (squared distance to the other mesh's 30,000 samples, "
             "both one-way means summed, GT's original units). Fits: codes only, decoder frozen.", ""]
    for category, cat in doc["categories"].items():
        lines += [f"### {category}: trained on {len(cat['train'])} of `{category}/train`, fitted on "
                  f"{len(cat['val'])} of `{category}/val`", "",
                  "| method | train s | CD median | CD mean | CD std | DeepSDF CD median | DeepSDF CD mean | "
                  "DeepSDF CD std | IoU median | IoU mean | IoU std | no surface |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in cat["methods"].values():
            cd, dcd, iou = r["chamfer"], r["deepsdf_chamfer"], r["iou"]
            lines.append(f"| {r['label']} | {r['train_s']:.1f} | {_num(cd['median'], CD_UNIT)} | "
                         f"{_num(cd['mean'], CD_UNIT)} | {_num(cd['std'], CD_UNIT)} | {_num(dcd['median'])} | "
                         f"{_num(dcd['mean'])} | {_num(dcd['std'])} | {_num(iou['median'])} | {_num(iou['mean'])} | "
                         f"{_num(iou['std'])} | {cd['failed']} of {len(r['shapes'])} |")
        lines += ["", f"Train: {', '.join(cat['train'])}. Val: {', '.join(cat['val'])}.", ""]
    return "\n".join(lines) + "\n"


def markdown6(doc: dict) -> str:
    lines = ["## Table 6 (Mehta et al. 2021): Scene A (trained) and Scene B (unseen)", "", scale_line(doc), "",
             f"Scene A: `{doc['scene_a']}`. Scene B: {', '.join(doc['scene_b'])} composed into one scene. "
             "CD: sdfkit's Chamfer x1e-5 (GT's unit-sphere frame); DeepSDF CD in GT's original units.", "",
             "| method | Scene B protocol | A: CD | A: IoU | B: CD | B: DeepSDF CD | B: IoU | B: F@1% | B: codes | "
             "B: steps | B: s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["methods"].values():
        a, b = r["A"], r["B"]
        seconds = b["train_s"] if "train_s" in b else b["fit_s"]
        lines.append(f"| {r['label']} | {r['protocol_b']} | {_num(a['chamfer'], CD_UNIT)} | {_num(a['iou'])} | "
                     f"{_num(b['chamfer'], CD_UNIT)} | {_num(b['deepsdf_chamfer'])} | {_num(b['iou'])} | "
                     f"{_num(b['fscore_1pct'])} | {b['codes']} | {b['steps']} | {seconds:.1f} |")
    order = sorted(doc["methods"], key=lambda n: _rank_key(doc["methods"][n]["B"]["chamfer"]))
    lines += ["", "Scene B, best CD first: " + ", ".join(doc["methods"][n]["label"] for n in order) + ".", ""]
    return "\n".join(lines) + "\n"


def _rank_key(value: float) -> float:
    """A field with no surface ranks last."""
    return value if math.isfinite(value) else math.inf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=("table3", "table6"))
    parser.add_argument("--quick", action="store_true", help="tiny models and steps, one val shape: a check")
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("--methods", nargs="+", default=list(TABLE3_METHODS), choices=TABLE3_METHODS,
                        help="Table 3's methods")
    parser.add_argument("--scene-methods", nargs="+", default=list(TABLE6_GLOBAL + TABLE6_LOCAL),
                        choices=TABLE6_GLOBAL + TABLE6_LOCAL, help="Table 6's methods")
    parser.add_argument("--out", type=Path, default=None, help="folder for the result files (default: results)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--name", default=None, help="result file name (default baselines-<table>-<scale>)")
    for key in OVERRIDES:
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=None, help=f"override the scale's {key}")
    args = parser.parse_args(argv)
    import torch

    from sdfkit.runtime import tune_allocator

    tune_allocator()
    torch.set_num_threads(1)  # a small shared CPU: extra threads mostly contend
    torch.manual_seed(0)
    scale_name = "quick" if args.quick else "cpu"
    scale = dict(SCALES[scale_name])
    for key in OVERRIDES:
        value = getattr(args, key)
        if value is not None:
            if value < 1:
                parser.error(f"--{key.replace('_', '-')} must be at least 1")
            scale[key] = value
    name = args.name or f"baselines-{args.table}-{scale_name}"
    t0 = time.perf_counter()
    commit = git_commit()  # the code the run started with (the tree may move on while it runs)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        log = lambda m: print(m, flush=True)  # noqa: E731
        if args.table == "table3":
            doc = table3(scale, work, tuple(args.categories), tuple(args.methods), log)
        else:
            doc = table6(scale, work, tuple(args.scene_methods), log)
    command = " ".join(["python -m benchmarks.paper_tables", *(argv if argv is not None else sys.argv[1:])])
    doc = {"command": command, "commit": commit, "scale": scale_name, "settings": scale, **doc,
           "seconds_total": round(time.perf_counter() - t0, 1)}
    path = write_result(name, doc, args.out, load_before=LOAD_BEFORE)
    doc = json.loads(path.read_text())
    text = markdown3(doc) if args.table == "table3" else markdown6(doc)
    md = write_result_text(name, ".md", text, args.out)
    print(text)
    print(f"wrote {path} and {md}")


if __name__ == "__main__":
    main()
