"""The method against its baselines, in the same training and fitting code.

Every auto-decoder method is one ``configs/baselines/*.yaml`` (decoder kind and
code layout); the per-shape SIREN reference has no auto-decoder. Experiments,
all on one machine in one invocation:

- scene (Mehta et al. 2021, Table 6 style): train on ``scene_a.obj``, fit codes
  only (decoder frozen) on an unseen scene composed from the val meshes; CD
  (x1e-5, ``sdfkit.metrics.evaluate_meshes``), IoU, F-score, parameters, train
  and fit seconds. The fit is the equal-time run at the largest budget.
- shapes (Table 3 style): train on the train meshes, fit each val mesh; median
  and mean CD and IoU.
- equal time: the scene's quality after each wall-clock fit budget (PNG plot).

Tables 3 and 6 with the paper's own protocols (CAD categories; each global baseline overfitted per scene) are
``benchmarks/paper_tables.py``, built on the functions here.

    python -m benchmarks.run --quick     # tiny models, few steps, 2 val shapes, 64^3: a few minutes
    python -m benchmarks.run             # the small CPU scale (see SCALES["full"])
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, RESULTS, SHARED, provenance, result_stem
from data_prep.files import atomic_write_text

CONFIGS = REPO / "configs" / "baselines"
#: Display order; "method" is the one the claim is about, "siren_reference" has no auto-decoder.
METHODS = ("method", "global_modsiren", "local_relu", "deepsdf", "siren_concat", "fourier", "siren_reference")
LABELS = {
    "method": "local grid + modulated SIREN (method)",
    "global_modsiren": "global code + modulated SIREN",
    "local_relu": "local grid + ReLU (DeepLS-style)",
    "deepsdf": "global code + ReLU, skip (DeepSDF-style)",
    "siren_concat": "global code + SIREN, concat",
    "fourier": "global code + Fourier features + ReLU",
    "siren_reference": "per-shape SIREN, SIREN loss (no auto-decoder)",
}
REFERENCE = "siren_reference"
#: Chamfer is reported in units of 1e-5 (the project's protocol squares distances in GT's unit frame).
CD_UNIT = 1e-5

SCALES = {
    "quick": {
        "model": {"hidden": 32, "layers": 3, "latent_dim": 16},
        "deepsdf_hidden": 64, "num_points": 30000, "train_steps": 80, "train_batch": 4096,
        "cells_per_object": 6.0, "fit_batch": 4096, "resolution": 64, "budgets": [2.0, 6.0], "shape_budget": 3.0,
        "val": ["sphere", "torus"], "train_shapes": 3, "num_surface": 10000, "num_volume": 100000,
    },
    "full": {
        "model": {}, "deepsdf_hidden": None, "num_points": 200000, "train_steps": 200, "train_batch": 8192,
        "cells_per_object": 12.0, "fit_batch": None, "resolution": 128, "budgets": [4.0, 12.0, 36.0], "shape_budget": 8.0,
        "val": None, "train_shapes": None, "num_surface": 30000, "num_volume": 1000000,
    },
}


def method_settings(name: str, scale: dict):
    """``configs/baselines/<name>.yaml`` at ``scale`` (model size, steps, batch, sampling, grid density)."""
    from sdfkit.config import load_settings, replace_section

    cfg = load_settings(CONFIGS / f"{name}.yaml")
    model = dict(scale["model"])
    if name == "deepsdf" and scale["deepsdf_hidden"]:
        model["hidden"] = scale["deepsdf_hidden"]
    if name == REFERENCE:
        model.pop("latent_dim", None)
    cfg = replace_section(cfg, "model", **model)
    cfg = replace_section(cfg, "sampling", num_points=scale["num_points"])
    cfg = replace_section(cfg, "train", steps=scale["train_steps"], batch_points=scale["train_batch"], log_every=10)
    cfg = replace_section(cfg, "grid", cells_per_object=scale["cells_per_object"])
    if scale["fit_batch"]:
        cfg = replace_section(cfg, "fit", batch_points=scale["fit_batch"])
    return cfg


def prepare(meshes: list[Path], cfg, work: Path) -> list[Path]:
    """Sample every mesh once (shared by all methods); returns the ``.npz`` paths."""
    from sdfkit.samples import load_or_prepare

    out = []
    for path in meshes:
        npz = work / "samples" / f"{path.stem}.npz"
        if not npz.is_file():
            npz.parent.mkdir(parents=True, exist_ok=True)
            load_or_prepare(path, cfg.sampling, seed=0).save(npz)
        out.append(npz)
    return out


def train_method(cfg, data: list[Path], out_dir: Path):
    from sdfkit.config import replace_section
    from sdfkit.train import train

    cfg = replace_section(cfg, "train", data=[str(p) for p in data])
    shutil.rmtree(out_dir, ignore_errors=True)  # scratch of an earlier run in the same --work folder
    return train(cfg, out_dir, device="cpu", progress=False)


def score(field, bounds, samples, gt, resolution: int, scale: dict) -> dict:
    """Extract ``field`` on ``bounds`` and score it against ``gt``; a field with no surface scores NaN.

    A scale with ``"deepsdf": True`` adds ``deepsdf_chamfer`` (DeepSDF's convention, :mod:`sdfkit.conventions`).
    """
    from sdfkit.conventions import deepsdf_metrics
    from sdfkit.errors import SdfkitError
    from sdfkit.extract import extract_mesh
    from sdfkit.metrics import evaluate_meshes

    try:
        recon = extract_mesh(field, resolution=resolution, bounds=bounds, normalization=samples.normalization)
        m = evaluate_meshes(recon, gt, num_surface=scale["num_surface"], num_volume=scale["num_volume"])
        if scale.get("deepsdf"):
            m.update(deepsdf_metrics(recon, gt))
    except SdfkitError as exc:
        failed = {"chamfer": math.nan, "iou": math.nan, "fscore_1pct": math.nan, "error": str(exc)}
        return {**failed, "deepsdf_chamfer": math.nan} if scale.get("deepsdf") else failed
    keys = ("chamfer", "iou", "fscore_1pct") + (("deepsdf_chamfer",) if scale.get("deepsdf") else ())
    return {k: m[k] for k in keys}


def fit_and_score(name: str, cfg, decoder, npz: Path, mesh: Path, budget: float, scale: dict) -> dict:
    """Fit ``mesh`` within ``budget`` seconds (codes only; the reference fits its whole SIREN) and score it."""
    from benchmarks.siren_reference import fit_siren_reference
    from data_prep.mesh import load_mesh
    from data_prep.sampling import SdfSamples
    from sdfkit.field import NeuralField
    from sdfkit.fit import fit_codes
    from sdfkit.models.latent_grid import GLOBAL_PADDING
    from sdfkit.scene import make_scene

    samples = SdfSamples.load(npz)
    gt = load_mesh(mesh)
    t0 = time.perf_counter()
    if name == REFERENCE:
        field, info = fit_siren_reference(samples, cfg.model.hidden, cfg.model.layers, cfg.model.w0, cfg.fit.steps,
                                          cfg.fit.batch_points or 8192, cfg.fit.lr, max_seconds=budget, seed=cfg.fit.seed)
        lo, hi = samples.surface_points.min(axis=0), samples.surface_points.max(axis=0)
        pad = GLOBAL_PADDING * float(np.max(hi - lo))
        bounds, steps, codes = (lo - pad, hi + pad), info["steps"], 0
    else:
        unit = gt.copy()
        unit.vertices = samples.normalization.to_unit(gt.vertices)
        scene = make_scene(samples, cfg, name=mesh.stem, seed=cfg.fit.seed, mesh_unit=unit)
        steps, _ = fit_codes(decoder, scene, cfg, max_seconds=budget)
        field = NeuralField(decoder, scene.grid, cfg.loss.band)
        bounds, codes = scene.grid.spec.bounds, scene.grid.num_codes
    fit_seconds = time.perf_counter() - t0
    return {"mesh": mesh.stem, "budget_s": budget, "fit_s": round(fit_seconds, 2), "steps": steps, "codes": codes,
            **score(field, bounds, samples, gt, scale["resolution"], scale)}


def shape_summary(shapes: list[dict]) -> dict:
    """Median and mean CD and IoU over the shapes that produced a surface, and how many did not."""
    ok = [r for r in shapes if math.isfinite(r["chamfer"])]
    if not ok:
        return {"cd_median": math.nan, "cd_mean": math.nan, "iou_median": math.nan, "iou_mean": math.nan,
                "failed": len(shapes)}
    cds, ious = [r["chamfer"] for r in ok], [r["iou"] for r in ok]
    return {"cd_median": statistics.median(cds), "cd_mean": statistics.fmean(cds), "iou_median": statistics.median(ious),
            "iou_mean": statistics.fmean(ious), "failed": len(shapes) - len(ok)}


def run(scale_name: str, work: Path, methods: tuple[str, ...] = METHODS, log=print) -> dict:
    """Every experiment for every method; returns the result document."""
    import torch

    from data_prep.compose import compose_scene
    from sdfkit.export import export_mesh
    from sdfkit.models import make_decoder
    from sdfkit.models.baselines import count_parameters

    torch.manual_seed(0)
    scale = SCALES[scale_name]
    val = sorted((SHARED / "val").glob("*.obj"))
    if scale["val"]:
        val = [SHARED / "val" / f"{v}.obj" for v in scale["val"]]
    train_shapes = sorted((SHARED / "train").glob("*.obj"))[: scale["train_shapes"]]
    scene_mesh = work / "scene_val.obj"
    export_mesh(compose_scene(val), scene_mesh)
    base = method_settings("method", scale)
    t0 = time.perf_counter()
    scene_a = prepare([SHARED / "scene_a.obj"], base, work)
    scene_val = prepare([scene_mesh], base, work)[0]
    train_npz = prepare(train_shapes, base, work)
    val_npz = prepare(val, base, work)
    log(f"sampled every mesh in {time.perf_counter() - t0:.1f} s")

    rows: dict[str, dict] = {}
    for name in methods:
        cfg = method_settings(name, scale)
        row: dict = {"label": LABELS[name], "kind": cfg.model.kind,
                     "layout": "per-shape" if name == REFERENCE else cfg.grid.layout}
        if name == REFERENCE:
            from sdfkit.models.baselines import SirenConcatDecoder

            row["parameters"] = count_parameters(SirenConcatDecoder(3, cfg.model.hidden, cfg.model.layers, 0, cfg.model.w0))
            scene_decoder = shapes_decoder = None
            row["train_s"] = 0.0
        else:
            row["parameters"] = count_parameters(make_decoder(cfg.model))
            result = train_method(cfg, scene_a, work / name / "scene")
            scene_decoder, row["train_s"], row["train_l1"] = result.decoder, round(result.seconds, 2), result.final_loss
            result = train_method(cfg, train_npz, work / name / "shapes")
            shapes_decoder, row["train_shapes_s"] = result.decoder, round(result.seconds, 2)
        row["equal_time"] = []
        for budget in scale["budgets"]:
            r = fit_and_score(name, cfg, scene_decoder, scene_val, scene_mesh, budget, scale)
            row["equal_time"].append(r)
            log(f"{name:16s} scene  budget {budget:5.1f} s  steps {r['steps']:5d}  CD {r['chamfer'] / CD_UNIT:9.2f}e-5  "
                f"IoU {r['iou']:.3f}  F@1% {r['fscore_1pct']:.3f}")
        row["scene"] = row["equal_time"][-1]
        row["shapes"] = [fit_and_score(name, cfg, shapes_decoder, npz, mesh, scale["shape_budget"], scale)
                         for npz, mesh in zip(val_npz, val)]
        row["shapes_summary"] = shape_summary(row["shapes"])
        log(f"{name:16s} shapes median CD {row['shapes_summary']['cd_median'] / CD_UNIT:9.2f}e-5  "
            f"mean IoU {row['shapes_summary']['iou_mean']:.3f}")
        rows[name] = row
    return {
        "scale": scale_name,
        "settings": {k: v for k, v in scale.items()},
        "train_scene": "scene_a.obj",
        "val": [v.stem for v in val],
        "train_shapes": [t.stem for t in train_shapes],
        "methods": rows,
        "seconds_total": round(time.perf_counter() - t0, 1),
    }


def verdict(doc: dict) -> str:
    """Plain statement of where the method wins or loses on the unseen scene's CD at the largest budget."""
    rows = doc["methods"]
    if "method" not in rows:
        return ""
    ours = rows["method"]["scene"]["chamfer"]
    if not math.isfinite(ours):
        return "The method produced no surface on the unseen scene at this scale (too little training): no verdict."
    # a baseline whose field has no surface (NaN) is beaten
    beaten_by = [n for n, r in rows.items() if n != "method" and r["scene"]["chamfer"] <= ours]
    budget = rows["method"]["scene"]["budget_s"]
    if not beaten_by:
        return (f"At the {budget:g} s fit budget the method has the lowest Chamfer distance on the unseen scene "
                f"({ours / CD_UNIT:.2f}e-5) of all {len(rows)} methods.")
    names = ", ".join(f"{LABELS[n]} ({rows[n]['scene']['chamfer'] / CD_UNIT:.2f}e-5)" for n in beaten_by)
    return (f"At the {budget:g} s fit budget the method ({ours / CD_UNIT:.2f}e-5) does NOT beat: {names}. "
            "A field with no zero level set inside its box counts as a failure (fail).")


def _cd(value: float) -> str:
    return "fail" if not math.isfinite(value) else f"{value / CD_UNIT:.2f}"


def markdown(doc: dict, plot_name: str) -> str:
    s = doc["settings"]
    rows = doc["methods"]
    lines = [
        "## Baselines", "",
        (f"Machine: {doc['machine']}, {doc.get('torch_threads', '?')} torch thread(s). CPU only, shared with other "
         f"jobs (timings are noisy). Scale `{doc['scale']}`: "
         f"decoders {s['model'] or 'as in configs/baselines'}, {s['train_steps']} training steps of {s['train_batch']} points, "
         f"{s['num_points']} samples per mesh, grid {s['cells_per_object']:g} cells per object, "
         f"marching cubes {s['resolution']}^3, metrics on {s['num_surface']} surface / {s['num_volume']} volume points. "
         f"Whole run {doc['seconds_total']:.0f} s."), "",
        f"Run: `{doc.get('command', 'python -m benchmarks.run')}`; configs in `configs/baselines/`.", "",
        f"### Unseen scene (Table 6 style): train on scene_a, fit the val scene ({', '.join(doc['val'])}) codes only", "",
        "| method | decoder | layout | parameters | codes | train s | fit s (steps) | CD x1e-5 | IoU | F@1% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        sc = r["scene"]
        lines.append(f"| {r['label']} | {r['kind']} | {r['layout']} | {r['parameters']} | {sc['codes']} | {r['train_s']:.1f} | "
                     f"{sc['fit_s']:.1f} ({sc['steps']}) | {_cd(sc['chamfer'])} | {sc['iou']:.3f} | {sc['fscore_1pct']:.3f} |")
    lines += ["", verdict(doc), "",
              (f"### Shapes (Table 3 style): train on {len(doc['train_shapes'])} train meshes, fit each val mesh "
               f"({s['shape_budget']:g} s each)"), "",
              "| method | CD median x1e-5 | CD mean x1e-5 | IoU median | IoU mean | no surface |", "|---|---|---|---|---|---|"]
    for r in rows.values():
        m = shape_summary(r["shapes"])
        lines.append(f"| {r['label']} | {_cd(m['cd_median'])} | {_cd(m['cd_mean'])} | {m['iou_median']:.3f} | "
                     f"{m['iou_mean']:.3f} | {m['failed']} of {len(r['shapes'])} |")
    budgets = s["budgets"]
    lines += ["", "### Equal time: unseen scene CD x1e-5 after each fit budget", "",
              "| method | " + " | ".join(f"{b:g} s" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
    for r in rows.values():
        lines.append(f"| {r['label']} | " + " | ".join(_cd(e["chamfer"]) for e in r["equal_time"]) + " |")
    lines += ["", f"![CD against fit budget]({plot_name})", ""]
    return "\n".join(lines) + "\n"


#: Line colours of the plot, one per method in :data:`METHODS` order.
COLOURS = [(200, 30, 30), (230, 130, 0), (30, 120, 200), (40, 160, 60), (140, 60, 180), (120, 120, 120), (0, 0, 0)]


def plot_equal_time(doc: dict, path: Path, size: tuple[int, int] = (900, 560)) -> None:
    """Log-log plot of the unseen scene's CD against the fit budget, one line per method (PIL)."""
    from PIL import Image, ImageDraw

    width, height = size
    left, right, top, bottom = 80, 330, 50, 60
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    rows = doc["methods"]
    budgets = doc["settings"]["budgets"]
    values = [e["chamfer"] for r in rows.values() for e in r["equal_time"] if math.isfinite(e["chamfer"]) and e["chamfer"] > 0]
    if not values:
        values = [1e-5, 1e-4]
    ylo, yhi = math.log10(min(values)) - 0.1, math.log10(max(values)) + 0.1
    xlo, xhi = math.log10(min(budgets)) - 0.1, math.log10(max(budgets)) + 0.1

    def xy(budget: float, cd: float) -> tuple[float, float]:
        x = left + (math.log10(budget) - xlo) / (xhi - xlo) * (width - left - right)
        y = top + (yhi - math.log10(cd)) / (yhi - ylo) * (height - top - bottom)
        return x, y

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for b in budgets:
        x, _ = xy(b, 10 ** ylo)
        draw.line([x, height - bottom, x, height - bottom + 5], fill="black")
        draw.text((x - 10, height - bottom + 8), f"{b:g} s", fill="black")
    for e in range(math.floor(ylo), math.ceil(yhi) + 1):
        for mult in (1, 2, 5):
            v = mult * 10.0 ** e
            if ylo <= math.log10(v) <= yhi:
                _, y = xy(budgets[0], v)
                draw.line([left - 5, y, left, y], fill="black")
                draw.text((5, y - 6), f"{v / CD_UNIT:g}e-5", fill="black")
    draw.text((left, 10), f"Unseen scene: Chamfer (log) vs fit budget (log). {doc['machine']}", fill="black")
    draw.text((left + 200, height - 25), "fit wall-clock budget", fill="black")
    for i, (name, r) in enumerate(rows.items()):
        colour = COLOURS[METHODS.index(name) % len(COLOURS)]
        pts = [xy(e["budget_s"], e["chamfer"]) for e in r["equal_time"] if math.isfinite(e["chamfer"]) and e["chamfer"] > 0]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=3 if name == "method" else 2)
        for x, y in pts:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        ly = top + 10 + 22 * i
        draw.line([width - right + 15, ly + 6, width - right + 40, ly + 6], fill=colour, width=3)
        label = r["label"][:46] + ("" if pts else " - no surface")
        draw.text((width - right + 45, ly), label, fill="black")
    img.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, few steps, 2 val shapes, 64^3")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the result files")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--train-steps", type=int, default=None, help="override the scale's training steps")
    parser.add_argument("--name", default=None, help="result file name (default baselines-quick / baselines-full)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: on a small shared CPU extra threads mostly contend)")
    args = parser.parse_args(argv)
    import torch

    from sdfkit.runtime import tune_allocator

    tune_allocator()  # as the sdfkit command does
    torch.set_num_threads(args.threads)
    scale = "quick" if args.quick else "full"
    name = args.name or ("baselines-quick" if args.quick else "baselines-full")
    if args.train_steps is not None:
        if args.train_steps < 1:
            parser.error("--train-steps must be at least 1")
        SCALES[scale] = {**SCALES[scale], "train_steps": args.train_steps}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])])
        doc = {**provenance(), "command": command, "torch_threads": args.threads,
               **run(scale, work, tuple(args.methods), log=lambda m: print(m, flush=True))}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = result_stem(name, args.out)
    atomic_write_text(Path(f"{stem}.json"), json.dumps(doc, indent=2, default=float) + "\n")
    plot_equal_time(doc, Path(f"{stem}.png"))
    text = markdown(doc, f"{stem.name}.png")
    atomic_write_text(Path(f"{stem}.md"), text)
    print(text)
    print(f"wrote {stem}.json, .md and .png")


if __name__ == "__main__":
    main()
