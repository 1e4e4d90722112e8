"""Auto-decoder training: the shared decoder and every scene's latent grid, jointly.

Each step draws ``batch_points / S`` samples from each of the S scenes, blends
the 8 tiles around every point, and minimises the clamped L1 loss plus an L2
prior on the codes (:func:`sdfkit.autodecoder.scene_loss`) with Adam, separate
learning rates for decoder and codes, and a cosine schedule. Batches are drawn
from a generator seeded by (seed, step), so a run resumed from a checkpoint
continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sdfkit.autodecoder import Scene, cosine_lr, make_decoder, make_scene, resolve_device, scene_loss
from sdfkit.config import to_dict
from sdfkit.decoder_io import decoder_payload, save_decoder
from sdfkit.errors import SdfkitError
from sdfkit.io import load_torch, save_torch
from sdfkit.models.latent_grid import GridSpec, LatentGrid
from sdfkit.samples import load_many, random_rotation
from sdfkit.settings import SdfkitConfig, settings_from_dict

CHECKPOINT = "checkpoint.pt"
DECODER = "decoder.pt"
LOG = "train.log"


@dataclasses.dataclass
class TrainResult:
    decoder_path: Path
    checkpoint_path: Path
    steps: int
    final_loss: float
    seconds: float
    history: list[tuple[int, float]]


def grid_state(grid: LatentGrid) -> dict:
    """Plain-data state of a latent grid (for checkpoints and fit outputs)."""
    active = grid.lookup >= 0
    return {
        "spec": grid.spec.to_dict(),
        "active": active.cpu(),
        "side": grid.side.to(torch.int8).cpu(),
        "codes": grid.codes.detach().cpu(),
    }


def grid_from_state(state: dict, where: str = "file") -> LatentGrid:
    """Inverse of :func:`grid_state`; one-line error for inconsistent data."""
    try:
        spec = GridSpec.from_dict(state["spec"])
        active = state["active"].numpy().astype(bool)
        side = state["side"].numpy().astype(np.float32)
        codes = state["codes"]
        if active.shape != (spec.num_vertices,) or side.shape != active.shape or codes.ndim != 2 or codes.shape[0] != int(active.sum()):
            raise ValueError
        if not torch.isfinite(codes).all():
            raise SdfkitError(f"{where} holds NaN or infinite latent codes")
    except SdfkitError:
        raise
    except (KeyError, AttributeError, TypeError, ValueError):
        raise SdfkitError(f"{where} holds an invalid latent grid") from None
    grid = LatentGrid(spec, active, side, int(codes.shape[1]))
    with torch.no_grad():
        grid.codes.copy_(codes.float())
    return grid


def _unit_mesh(samples):
    """The training mesh in its samples' unit frame (for the automatic grid resolution)."""
    from data_prep.mesh import load_mesh

    source, _, rotation = samples.source.partition("#rotation")
    mesh = load_mesh(source)
    if rotation:
        mesh.vertices = np.asarray(mesh.vertices) @ random_rotation(int(rotation)).T
    mesh.vertices = samples.normalization.to_unit(mesh.vertices)
    return mesh


def _draw(scene: Scene, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(len(scene.points), (count,), generator=generator, device=scene.points.device)
    return scene.points.index_select(0, idx), scene.sdf.index_select(0, idx)


def step_generator(device: torch.device, seed: int, step: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) * 1_000_003 + int(step))
    return gen


def train(
    cfg: SdfkitConfig,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train the decoder and every scene's latent grid; write checkpoints and a decoder file to ``out_dir``.

    With ``resume``, continue from ``out_dir/checkpoint.pt`` at its step.
    """
    out = Path(out_dir)
    if not cfg.train.data:
        raise SdfkitError("the config lists no training data (train.data)")
    if cfg.train.steps < 1 or cfg.train.batch_points < len(cfg.train.data):
        raise SdfkitError("train.steps must be >= 1 and train.batch_points >= the number of scenes")
    dev = resolve_device(device)
    ckpt_path = out / CHECKPOINT
    state = None
    if resume:
        if not ckpt_path.is_file():
            raise SdfkitError(f"nothing to resume: {ckpt_path} does not exist")
        state = load_torch(ckpt_path, what="checkpoint")
        if state["sdfkit"].get("kind") != "train_checkpoint":
            raise SdfkitError(f"{ckpt_path} is not a training checkpoint")
        saved = settings_from_dict(state["config"])
        if dataclasses.replace(saved, train=dataclasses.replace(saved.train, steps=cfg.train.steps)) != cfg:
            raise SdfkitError(f"the config differs from the one {ckpt_path} was trained with (only train.steps may change)")
    elif ckpt_path.exists():
        raise SdfkitError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.train.seed)
    items = [(item, cfg.train.seed + i, r) for i, item in enumerate(cfg.train.data) for r in range(cfg.train.rotations + 1)]
    all_samples = load_many(items, cfg.sampling, out / "samples")
    scenes: list[Scene] = []
    for i, ((item, seed, rotation), samples) in enumerate(zip(items, all_samples)):
        grid = grid_from_state(state["scenes"][i], str(ckpt_path)) if state else None
        name = Path(item).stem + (f"-r{rotation}" if rotation else "")
        scenes.append(make_scene(samples, cfg, name=name, seed=seed * 101 + rotation, grid=grid,
                                 mesh_unit=_unit_mesh(samples) if cfg.grid.resolution is None and grid is None else None).to(dev))

    decoder = make_decoder(cfg.model).to(dev)
    if state:
        decoder.load_state_dict(state["decoder"]["state_dict"])
    optimizer = torch.optim.Adam(
        [
            {"params": list(decoder.parameters()), "lr": cfg.train.lr_decoder, "base_lr": cfg.train.lr_decoder},
            {"params": [s.grid.codes for s in scenes], "lr": cfg.train.lr_codes, "base_lr": cfg.train.lr_codes},
        ]
    )
    start, history = 0, []
    if state:
        optimizer.load_state_dict(state["optimizer"])
        start, history = int(state["step"]), [tuple(h) for h in state["history"]]

    def save_checkpoint(step: int) -> None:
        save_torch(
            {
                "sdfkit": {"kind": "train_checkpoint", "version": 1},
                "step": step,
                "config": to_dict(cfg),
                "decoder": decoder_payload(decoder, cfg),
                "scenes": [dict(grid_state(s.grid), name=s.name) for s in scenes],
                "optimizer": optimizer.state_dict(),
                "history": [list(h) for h in history],
            },
            ckpt_path,
        )

    per_scene = cfg.train.batch_points // len(scenes)
    log = open(out / LOG, "a", encoding="utf-8")
    log.write(json.dumps({"event": "start", "step": start, "device": str(dev), "scenes": [s.name for s in scenes],
                          "codes": sum(s.grid.num_codes for s in scenes)}) + "\n")
    t0 = time.perf_counter()
    loss_value = float("nan")
    bar = _progress(progress)
    with bar:
        task = bar.add_task("train", total=cfg.train.steps, completed=start, loss=float("nan"))
        for step in range(start, cfg.train.steps):
            factor = cosine_lr(step, cfg.train.steps, cfg.train.lr_final_fraction)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            gen = step_generator(dev, cfg.train.seed, step)
            optimizer.zero_grad(set_to_none=True)
            batches = [_draw(scene, per_scene, gen) for scene in scenes]
            loss, l1 = scene_loss(decoder, [s.grid for s in scenes], [b[0] for b in batches], [b[1] for b in batches],
                                  cfg.loss.band, cfg.loss.code_reg)
            loss.backward()
            total = l1.detach()
            optimizer.step()
            if (step + 1) % cfg.train.log_every == 0 or step + 1 == cfg.train.steps:
                loss_value = float(total)
                if not np.isfinite(loss_value):
                    raise SdfkitError(f"training diverged at step {step + 1} (loss is {loss_value})")
                history.append((step + 1, loss_value))
                log.write(json.dumps({"step": step + 1, "l1": loss_value, "lr_factor": factor,
                                      "seconds": round(time.perf_counter() - t0, 3)}) + "\n")
                log.flush()
                if on_step:
                    on_step(step + 1, loss_value)
            bar.update(task, advance=1, loss=loss_value)
            if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.steps:
                save_checkpoint(step + 1)
    seconds = time.perf_counter() - t0
    decoder_path = out / DECODER
    save_decoder(decoder_path, decoder, cfg, trained_on=[str(d) for d in cfg.train.data], steps=cfg.train.steps)
    log.write(json.dumps({"event": "done", "step": cfg.train.steps, "seconds": round(seconds, 3)}) + "\n")
    log.close()
    return TrainResult(decoder_path, ckpt_path, cfg.train.steps, loss_value, seconds, history)


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
