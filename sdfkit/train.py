"""Auto-decoder training: the shared decoder and every scene's latent grid, jointly.

Each step draws ``batch_points / S`` samples from each of the S scenes, blends
the 8 tiles around every point, and minimises the clamped L1 loss plus an L2
prior on the codes (:func:`sdfkit.loss.scene_loss`) with Adam, separate
learning rates for decoder and codes, and a cosine schedule. Batches are drawn
from a generator seeded by (seed, step), so a run resumed from a checkpoint
continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from data_prep.mesh import load_mesh
from data_prep.sources import resolve_data
from data_prep.yaml_io import to_dict
from sdfkit.config import SdfkitConfig, settings_from_dict
from sdfkit.decoder_io import decoder_payload, save_decoder
from sdfkit.errors import SdfkitError
from sdfkit.io import load_torch, save_torch
from sdfkit.loss import scene_loss
from sdfkit.models import make_decoder
from sdfkit.models.latent_grid import LatentGrid
from sdfkit.models.siren import ModulatedSiren
from sdfkit.optim import compiled_synthesis, cosine_lr, precision_scope
from sdfkit.progress import Reporter
from sdfkit.runtime import device_name, resolve_device
from sdfkit.samples import load_many, random_rotation
from sdfkit.scene import Scene, make_scene

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
    decoder: torch.nn.Module
    """This process's copy of the trained decoder."""


def _unit_mesh(samples):
    """The training mesh in its samples' unit frame (for the automatic grid resolution)."""
    source, _, rotation = samples.source.partition("#rotation")
    mesh = load_mesh(source)
    if rotation:
        mesh.vertices = np.asarray(mesh.vertices) @ random_rotation(int(rotation)).T
    mesh.vertices = samples.normalization.to_unit(mesh.vertices)
    return mesh


def _draw(scene: Scene, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random samples of ``scene`` (with replacement)."""
    idx = torch.randint(len(scene.points), (count,), generator=generator, device=scene.points.device)
    return scene.points.index_select(0, idx), scene.sdf.index_select(0, idx)


def scene_generator(device: torch.device, seed: int, step: int, scene: int) -> torch.Generator:
    """Batch generator of one scene at one step: the same batches on any number of processes."""
    gen = torch.Generator(device=device)
    gen.manual_seed((int(seed) * 1_000_003 + int(step)) * 4099 + int(scene))
    return gen


@dataclasses.dataclass
class Distributed:
    """Where this process stands in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def owns(self, index: int) -> bool:
        """Scenes are dealt round-robin: process r owns scenes r, r + world, ..."""
        return index % self.world == self.rank


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def close_distributed() -> None:
    """Leave the process group, if any, once every process is done: a gloo group left to the interpreter's exit
    can abort the process ("terminate called without an active exception") after its work has finished."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class DecoderLoss(torch.nn.Module):
    """The decoder as the one module DistributedDataParallel replicates.

    Its forward is :func:`scene_loss` on this process's scenes; the scenes'
    codes are arguments, not parameters, so DDP all-reduces the decoder's
    gradients and never the codes.
    """

    def __init__(self, decoder: ModulatedSiren, band: float, code_reg: float, point_count: int, code_count: int,
                 world: int):
        super().__init__()
        self.decoder, self.band, self.code_reg = decoder, band, code_reg
        self.point_count, self.code_count, self.world = point_count, code_count, world

    def forward(self, grids, points, sdf):
        # Sums over this process's share, normalised by the global counts and
        # scaled by the world size: DDP's gradient average then equals the
        # gradient of the global mean loss.
        loss, l1 = scene_loss(self.decoder, grids, points, sdf, self.band, self.code_reg, self.point_count,
                              self.code_count)
        return loss * self.world, l1


def _gather(obj, dist_info: Distributed) -> list:
    """Every process's ``obj`` on rank 0 (a list there, [] elsewhere)."""
    if dist_info.world == 1:
        return [obj]
    out = [None] * dist_info.world if dist_info.main else None
    dist.gather_object(obj, out, dst=0)
    return out or []


def train(
    cfg: SdfkitConfig,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train the decoder and every scene's latent grid; write checkpoints and a decoder file to ``out_dir``.

    With ``resume``, continue from ``out_dir/checkpoint.pt`` at its step. Under
    ``torchrun`` each process owns a share of the scenes (their codes and
    their codes' optimiser state), the decoder is replicated with
    DistributedDataParallel, and rank 0 alone writes files. A checkpoint holds
    every scene, so a run resumes on any number of processes.
    """
    out = Path(out_dir)
    if not cfg.train.data:
        raise SdfkitError("the config lists no training data (train.data)")
    data = [str(p) for p in resolve_data(cfg.train.data)]
    items = [(item, cfg.train.seed + i, r) for i, item in enumerate(data) for r in range(cfg.train.rotations + 1)]
    if cfg.train.steps < 1 or cfg.train.batch_points < len(items):
        raise SdfkitError("train.steps must be >= 1 and train.batch_points >= the number of scenes")
    dev = resolve_device(device)
    dist_info = init_distributed(dev)
    if dist_info.world > len(items):
        raise SdfkitError(f"{dist_info.world} processes but only {len(items)} scenes: "
                          "use at most one process per scene")
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
            raise SdfkitError(f"the config differs from the one {ckpt_path} was trained with "
                              "(only train.steps may change)")
    elif ckpt_path.exists():
        raise SdfkitError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.train.seed)
    mine = [i for i in range(len(items)) if dist_info.owns(i)]
    all_samples = load_many([items[i] for i in mine], cfg.sampling, out / "samples")
    scenes: dict[int, Scene] = {}
    for i, samples in zip(mine, all_samples):
        item, seed, rotation = items[i]
        grid = LatentGrid.from_state(state["scenes"][i], str(ckpt_path)) if state else None
        name = Path(item).stem + (f"-r{rotation}" if rotation else "")
        needs_mesh = cfg.grid.resolution is None and cfg.grid.layout == "local" and grid is None
        scenes[i] = make_scene(samples, cfg, name=name, seed=seed * 101 + rotation, grid=grid,
                               mesh_unit=_unit_mesh(samples) if needs_mesh else None).to(dev)

    decoder = make_decoder(cfg.model).to(dev)
    if state:
        decoder.load_state_dict(state["decoder"]["state_dict"])
    per_scene = cfg.train.batch_points // len(items)
    code_count = torch.tensor(sum(s.grid.num_codes for s in scenes.values()))
    if dist_info.world > 1:
        code_count = code_count.to(dev)
        dist.all_reduce(code_count)
    model: torch.nn.Module = DecoderLoss(decoder, cfg.loss.band, cfg.loss.code_reg, per_scene * len(items),
                                         int(code_count), dist_info.world)
    if dist_info.world > 1:
        model = DistributedDataParallel(model, device_ids=[dev.index or 0] if dev.type == "cuda" else None)
    decoder_opt = torch.optim.Adam(decoder.parameters(), lr=cfg.train.lr_decoder)
    # One optimiser per scene: a scene's codes and their Adam moments travel together
    # between processes and checkpoints.
    code_opts = {i: torch.optim.Adam([scenes[i].grid.codes], lr=cfg.train.lr_codes) for i in mine}
    start, history = 0, []
    if state:
        decoder_opt.load_state_dict(state["decoder_optimizer"])
        for i in mine:
            code_opts[i].load_state_dict(state["scenes"][i]["optimizer"])
        start, history = int(state["step"]), [tuple(h) for h in state["history"]]

    def save_checkpoint(step: int) -> None:
        local = {i: dict(scenes[i].grid.state(), name=scenes[i].name, optimizer=code_opts[i].state_dict())
                 for i in mine}
        gathered = _gather(local, dist_info)
        if not dist_info.main:
            return
        all_scenes = {i: s for part in gathered for i, s in part.items()}
        save_torch(
            {
                "sdfkit": {"kind": "train_checkpoint", "version": 1},
                "step": step,
                "config": to_dict(cfg),
                "decoder": decoder_payload(decoder, cfg),
                "decoder_optimizer": decoder_opt.state_dict(),
                "scenes": [all_scenes[i] for i in range(len(items))],
                "history": [list(h) for h in history],
            },
            ckpt_path,
        )

    log = open(out / LOG, "a", encoding="utf-8") if dist_info.main else None
    if log:
        log.write(json.dumps({"event": "start", "step": start, "device": str(dev), "device_name": device_name(dev),
                              "processes": dist_info.world, "scenes": len(items),
                              "codes_rank0": sum(s.grid.num_codes for s in scenes.values())}) + "\n")
    t0 = time.perf_counter()
    loss_value = float("nan")
    bar = Reporter(progress and dist_info.main)
    with bar, compiled_synthesis(decoder, cfg.train.compile):
        task = bar.stage("train", total=cfg.train.steps, completed=start)
        for step in range(start, cfg.train.steps):
            factor = cosine_lr(step, cfg.train.steps, cfg.train.lr_final_fraction)
            decoder_opt.param_groups[0]["lr"] = cfg.train.lr_decoder * factor
            for opt in code_opts.values():
                opt.param_groups[0]["lr"] = cfg.train.lr_codes * factor
            batches = [_draw(scenes[i], per_scene, scene_generator(dev, cfg.train.seed, step, i)) for i in mine]
            decoder_opt.zero_grad(set_to_none=True)
            for opt in code_opts.values():
                opt.zero_grad(set_to_none=True)
            with precision_scope(dev, cfg.train.precision):
                loss, l1 = model([scenes[i].grid for i in mine], [b[0] for b in batches], [b[1] for b in batches])
            loss.backward()
            decoder_opt.step()
            for i, opt in code_opts.items():
                grad = scenes[i].grid.codes.grad
                # Undo the world-size scale on codes, which DDP does not average.
                if dist_info.world > 1 and grad is not None:
                    grad.div_(dist_info.world)
                opt.step()
            if (step + 1) % cfg.train.log_every == 0 or step + 1 == cfg.train.steps:
                total = l1.detach()
                if dist_info.world > 1:
                    dist.all_reduce(total)  # each process holds its share of the global mean
                loss_value = float(total)
                if not np.isfinite(loss_value):
                    raise SdfkitError(f"training diverged at step {step + 1} (loss is {loss_value})")
                history.append((step + 1, loss_value))
                if log:
                    log.write(json.dumps({"step": step + 1, "l1": loss_value, "lr_factor": factor,
                                          "seconds": round(time.perf_counter() - t0, 3)}) + "\n")
                    log.flush()
            bar.update(task, advance=1, loss=loss_value)
            if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.steps:
                save_checkpoint(step + 1)
            if on_step and history and history[-1][0] == step + 1:
                on_step(step + 1, loss_value)
        task.done()
    seconds = time.perf_counter() - t0
    decoder_path = out / DECODER
    if log is not None:  # the main process
        save_decoder(decoder_path, decoder, cfg, trained_on=[str(d) for d in cfg.train.data], steps=cfg.train.steps)
        log.write(json.dumps({"event": "done", "step": cfg.train.steps, "seconds": round(seconds, 3)}) + "\n")
        log.close()
    return TrainResult(decoder_path, ckpt_path, cfg.train.steps, loss_value, seconds, history, decoder)
