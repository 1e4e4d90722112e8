"""``sdfkit fit``: a new mesh through the whole pipeline with a frozen decoder.

mesh -> samples -> latent grid (codes optimised, decoder frozen) -> field ->
mesh in the input's units -> metrics against the input. The output folder is
written under a temporary name and renamed into place only when complete, so
a failed or killed fit leaves no half-written folder. Pictures of the fit are
drawn by the caller (the CLI passes a ``preview`` drawer): the library never
imports the viewer.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import trimesh

from data_prep.forked import Beside, can_fork, default_workers
from data_prep.mesh import Normalization, normalize_mesh, read_mesh
from data_prep.points import PointCloud, is_point_cloud
from data_prep.sampling import SdfSamples, sample_unit_mesh
from data_prep.sdf import MeshSDF
from data_prep.yaml_io import from_dict, load_yaml, to_dict
from sdfkit.code_init import check_init, encoder_codes, refine_no_worse, resolve_init
from sdfkit.config import FP32_WEIGHT_FLOOR, FitConfig, SdfkitConfig, load_settings, replace_section
from sdfkit.decoder_io import load_decoder
from sdfkit.errors import SdfkitError
from sdfkit.export import DEFAULT_FACES, check_faces, simplification_chamfer, write_simplified
from sdfkit.extract import extract_mesh
from sdfkit.field import NeuralField
from sdfkit.fit_output import (
    LATENTS,
    PREVIEW,
    REPORT,
    drop_unsupported,
    mesh_file_name,
    write_latents,
    write_report,
)
from sdfkit.io import describe_os_error, make_temp_dir, refuse_existing, replace_dir
from sdfkit.lm import lm_fit_codes
from sdfkit.metrics import evaluate_meshes, evaluate_to_points
from sdfkit.models.siren import ModulatedSiren
from sdfkit.optim import CodeAdam, RunningAverage, backward_in_chunks, compiled_synthesis, cosine_factor
from sdfkit.points_loss import SurfaceWeights, cloud_loss, cloud_weights, describe_cloud_loss
from sdfkit.progress import Reporter
from sdfkit.runtime import cpu_chunk_points, device_name, resolve_device, resolve_precision, torch_threads_kept
from sdfkit.samples import prepare_cloud
from sdfkit.scene import BatchDraw, Scene, make_scene

EXPORT_FORMATS = ("obj", "ply", "stl", "glb", "off")
#: An empty lock file older than this was left by a fit killed between creating and writing it.
EMPTY_LOCK_SECONDS = 10.0


@dataclasses.dataclass
class FitRequest:
    """One ``sdfkit fit`` as asked: which decoder, config file and device, where the output goes, and
    overrides of the config's ``fit`` and ``grid`` sections (None: keep the config's value).

    The settings themselves, and their checks, are :class:`~sdfkit.config.FitConfig` and
    :class:`~sdfkit.config.GridConfig`; :func:`fit_settings` applies the overrides to them.
    """

    decoder: str | None = None
    config: str | None = None
    steps: int | None = None
    batch_points: int | None = None
    lr: float | None = None
    grid_resolution: int | None = None
    resolution: int | None = None
    max_seconds: float | None = None
    precision: str | None = None
    compile: bool | None = None
    device: str = "auto"
    format: str = "obj"
    faces: int = DEFAULT_FACES
    keep_full: bool = False
    force: bool = False
    preview: bool = True
    """Draw ``preview.png`` when :func:`fit_mesh` is given a drawer."""
    seed: int | None = None
    init: str | None = None
    """auto, encoder or random (:data:`sdfkit.code_init.INITS`)."""
    optimizer: str | None = None
    """adam or lm (:attr:`sdfkit.config.FitConfig.optimizer`)."""
    encoder: str | None = None
    """Encoder file for ``init`` encoder (None: the shipped one)."""
    normals: str = "auto"
    """Point clouds: ``auto`` (the file's normals, else estimated), ``given`` or ``estimate``."""
    batch_shapes: int | None = None
    """Folder fits: meshes whose codes are refined together in one batch (None: 8 on a GPU, 1 on a CPU)."""
    denoise: str = "auto"
    """Point clouds: move the points onto quadratic surfaces fitted to their neighbours: ``auto`` (when the cloud
    looks noisy), ``on`` or ``off``."""
    keep_unsupported: bool = False
    """Keep the extracted mesh's parts that lie wholly away from the input
    (:func:`sdfkit.fit_output.drop_unsupported`)."""


@dataclasses.dataclass
class FitResult:
    """What a fit produced: its report (also ``report.json``) and what pictures of it need."""

    report: dict
    recon: trimesh.Trimesh
    """The extracted mesh, in the input's units."""
    mesh: trimesh.Trimesh | None
    """The cleaned input mesh, in its own units (None for a point cloud)."""
    field: NeuralField
    """(N, 3) unit-frame points -> (N,) signed distances, negative inside."""
    normalization: Normalization
    bounds: tuple[np.ndarray, np.ndarray]
    """The latent grid's box in the unit frame, (3,) each."""
    written: trimesh.Trimesh | None = None
    """``mesh.<format>`` as written (simplified to ``--faces``), in the input's units."""
    extracted: trimesh.Trimesh | None = None
    """The extracted mesh before its unsupported parts were dropped (None when none were), in the input's units."""


#: Writes one extra file of a fit (``preview.png``) at the given path, inside the not-yet-renamed output folder.
Drawer = Callable[[Path, FitResult], None]


def fit_batch_points(cfg: SdfkitConfig, num_codes: int) -> int:
    """Points per fitting step: ``fit.batch_points``, or enough to give every code a few samples."""
    if cfg.fit.batch_points is not None:
        return cfg.fit.batch_points
    return int(min(max(cfg.fit.points_per_code * num_codes, 8192), 262144))


def fit_codes(
    decoder: ModulatedSiren,
    scene: Scene | Sequence[Scene],
    cfg: SdfkitConfig,
    max_seconds: float | None = None,
    progress=None,
    task=None,
    chunk_points: int | None = None,
    extra_loss: Callable[[], torch.Tensor | None] | None = None,
) -> tuple[int, float]:
    """Optimise only ``scene``'s codes against its samples; the decoder stays frozen.

    Several scenes (a batch of shapes) are fitted together: each step draws every scene's own batch
    (:func:`fit_batch_points`) and one decoder pass serves them all, while each scene's codes get the
    gradient of its own loss (:func:`sdfkit.optim.backward_in_chunks`), so each ends as it would alone.

    Stops after ``cfg.fit.steps`` steps or ``max_seconds``, whichever comes
    first. The learning rate follows a cosine over whichever of the two is
    further along, so a fit cut short by its time budget still ends on a
    small rate instead of stopping mid-descent. The codes end as the running average of the steps' codes
    (``cfg.fit.average``; 0: the last step's, :class:`sdfkit.optim.RunningAverage`).
    ``chunk_points`` bounds the points of one backward pass (None: sized to the
    cache on a CPU, :func:`sdfkit.runtime.cpu_chunk_points`; one pass on a GPU).
    ``extra_loss``: a further loss term each step, None on a step without one (e.g.
    :func:`sdfkit.points_loss.surface_loss`).
    Returns (steps done, last L1 in cell units, the scenes' mean).
    """
    scenes = [scene] if isinstance(scene, Scene) else list(scene)
    for p in decoder.parameters():
        p.requires_grad_(False)
    optimizer = CodeAdam([s.grid.codes for s in scenes], lr=cfg.fit.lr)
    average = RunningAverage([s.grid.codes for s in scenes], cfg.fit.average)
    device = scenes[0].points.device
    cfg = settle_on_device(cfg, device)
    assert cfg.fit.weight_floor is not None  # settled
    # A generator per scene, seeded alike: each scene draws the batches it would draw alone.
    gens = [torch.Generator(device=device).manual_seed(cfg.fit.seed) for _ in scenes]
    draws = [BatchDraw.of(s, fit_batch_points(cfg, s.grid.num_codes), cfg.fit.surface_fraction,
                          cfg.fit.surface_band, cfg.fit.stratify) for s in scenes]
    chunk = chunk_points or (cpu_chunk_points(decoder.hidden) if device.type == "cpu" else None)
    t0, step, l1 = time.perf_counter(), 0, torch.tensor(float("nan"))
    with compiled_synthesis(decoder, cfg.fit.compile):
        for step in range(1, cfg.fit.steps + 1):
            done = (step - 1) / cfg.fit.steps
            if max_seconds is not None:
                done = max(done, (time.perf_counter() - t0) / max_seconds)
            optimizer.lr = cfg.fit.lr * cosine_factor(done, cfg.fit.lr_final_fraction)
            idx = [draw.sample(g) for draw, g in zip(draws, gens)]
            optimizer.zero_grad()
            l1 = backward_in_chunks(decoder, [s.grid for s in scenes], [s.points[i] for s, i in zip(scenes, idx)],
                                    [s.sdf[i] for s, i in zip(scenes, idx)], cfg.loss.band, cfg.loss.code_reg, chunk,
                                    cfg.fit.precision, cfg.fit.weight_floor)
            extra = extra_loss() if extra_loss is not None else None
            if extra is not None:
                extra.backward()
            optimizer.step()
            average.update()
            if progress is not None and (step % 10 == 0 or step == cfg.fit.steps):
                progress.update(task, completed=step, loss=float(l1))
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                break
    average.store()
    if not all(torch.isfinite(s.grid.codes).all() for s in scenes):
        raise SdfkitError("fitting diverged (non-finite latent codes); try a lower --lr")
    return step, float(l1)


def lm_refine(decoder: ModulatedSiren, scene: Scene, cfg: SdfkitConfig, max_seconds: float | None = None,
              progress=None, task=None) -> tuple[int, float]:
    """:func:`sdfkit.lm.lm_fit_codes` with the fit's settings: ``cfg.fit.steps`` sweeps of
    ``cfg.fit.lm_points_per_code`` samples per code. Returns (sweeps done, last L1 in cell units)."""

    def report(sweep: int, l1: float) -> None:
        if progress is not None:
            progress.update(task, completed=sweep, loss=l1)

    batch = max(int(cfg.fit.lm_points_per_code * scene.grid.num_codes), 1)
    with torch.no_grad():
        done = lm_fit_codes(decoder, scene.grid, scene.points, scene.sdf, cfg.loss.band, cfg.loss.code_reg,
                            cfg.fit.steps, batch, cfg.fit.seed, max_seconds, report)
    if not torch.isfinite(scene.grid.codes).all():
        raise SdfkitError("fitting diverged (non-finite latent codes); try --optimizer adam")
    return done


def settle_on_device(cfg: SdfkitConfig, device: torch.device) -> SdfkitConfig:
    """``cfg`` with the fit settings that depend on the device made concrete: precision ``auto``
    (:func:`sdfkit.runtime.resolve_precision`) and an unset weight floor (:data:`sdfkit.config.FP32_WEIGHT_FLOOR`
    in float32, 0 in bf16, whose step its second forward pass makes no cheaper)."""
    precision = resolve_precision(cfg.fit.precision, device)
    floor = cfg.fit.weight_floor
    if floor is None:
        floor = 0.0 if precision == "bf16" else FP32_WEIGHT_FLOOR
    return dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, precision=precision, weight_floor=floor))


def fit_settings(base: SdfkitConfig, opts: FitRequest, dec_id: str | None = None) -> SdfkitConfig:
    """The decoder's model, grid, sampling and loss settings with the package's fit defaults, then a
    config file's ``fit``/``grid``/``sampling`` sections, then CLI options.

    ``fit.init`` ``auto`` becomes ``encoder`` when an encoder serves the decoder named ``dec_id``, else ``random``;
    after the encoder, ``steps``, ``lr``, ``points_per_code``, ``surface_fraction``, ``weight_floor`` and
    ``average`` take their ``refine_*`` values (``fit.lm_sweeps`` for the steps with the ``lm`` optimizer) unless the
    config file or ``opts`` sets them.
    """
    cfg = dataclasses.replace(base, fit=FitConfig())
    file_fit: dict = {}
    if opts.config:
        load_settings(opts.config)  # every key of every section checked by name
        raw = load_yaml(opts.config)
        file_fit = raw.get("fit") or {}
        # A file's section changes the keys it names: the decoder's other settings (its sampling, its grid) stay.
        cfg = dataclasses.replace(cfg, **{name: from_dict(type(getattr(cfg, name)),
                                                          {**to_dict(getattr(cfg, name)), **(raw.get(name) or {})})
                                          for name in ("fit", "grid", "sampling", "model")})
        # The code layout belongs to the decoder; a config file may tune the grid, not change its kind.
        cfg = replace_section(cfg, "grid", layout=base.grid.layout)
        if cfg.model != base.model:
            raise SdfkitError(f"{opts.config}: its model section does not match the decoder's architecture")
    cfg = replace_section(cfg, "fit", init=check_init(opts.init) if opts.init else None)
    cfg = replace_section(cfg, "fit", init=resolve_init(cfg.fit.init, dec_id, opts.encoder))
    cfg = replace_section(cfg, "fit", optimizer=opts.optimizer)
    if cfg.fit.init == "encoder":
        refine = cfg.fit.lm_sweeps if cfg.fit.optimizer == "lm" else cfg.fit.refine_steps
        asked = {"steps": opts.steps is not None or "steps" in file_fit, "lr": opts.lr is not None or "lr" in file_fit,
                 "points_per_code": "points_per_code" in file_fit, "surface_fraction": "surface_fraction" in file_fit,
                 "weight_floor": "weight_floor" in file_fit, "average": "average" in file_fit}
        # Set directly, not through replace_section: an unset refine_weight_floor (None) is a value here.
        cfg = dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, **{key: value for key, value in (
            ("steps", refine), ("lr", cfg.fit.refine_lr), ("points_per_code", cfg.fit.refine_points_per_code),
            ("surface_fraction", cfg.fit.refine_surface_fraction), ("weight_floor", cfg.fit.refine_weight_floor),
            ("average", cfg.fit.refine_average))
            if not asked[key]}))
    cfg = replace_section(cfg, "fit", steps=opts.steps, batch_points=opts.batch_points, lr=opts.lr,
                          resolution=opts.resolution, seed=opts.seed, precision=opts.precision, compile=opts.compile)
    # Each section checks its own values when built (FitConfig, GridConfig __post_init__); the time budget
    # is the request's alone.
    if opts.max_seconds is not None and not opts.max_seconds > 0:
        raise SdfkitError(f"--max-seconds must be positive, got {opts.max_seconds}")
    return replace_section(cfg, "grid", resolution=opts.grid_resolution)


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``<out_dir>.lock`` so that a second fit into the same folder refuses at once."""
    lock = out_dir.with_name(f".{out_dir.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                if pid > 0:
                    os.kill(pid, 0)
                elif time.time() - lock.stat().st_mtime > EMPTY_LOCK_SECONDS:
                    raise ValueError  # empty: its writer was killed before writing its id
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # left by a killed run
                continue
            except PermissionError:
                pass
            raise SdfkitError(f"another sdfkit process is writing {out_dir} (lock {lock})") from None
        except OSError as exc:
            raise SdfkitError(f"cannot write to {out_dir.parent}: {exc.strerror}") from None
    else:
        raise SdfkitError(f"cannot lock {out_dir}")
    # Holding the lock, no other fit writes out_dir: temporary folders beside it were left by killed fits.
    for kind in ("tmp", "old"):
        for stale in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.{kind}-*"):
            shutil.rmtree(stale, ignore_errors=True)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


@dataclasses.dataclass
class PreparedFit:
    """One input read, sampled and bound to its latent grid, its codes initialised: ready to refine."""

    mesh_path: Path
    out: Path
    fmt: str
    gt: trimesh.Trimesh | None
    """The cleaned input mesh in its own units (None for a point cloud)."""
    mesh_hash: str
    decoder: ModulatedSiren
    cfg: SdfkitConfig
    dec_id: str
    samples: SdfSamples
    scene: Scene
    cloud: PointCloud | None
    """The point cloud as read, in its own units (None for a mesh): what a cloud's fit is scored against."""
    cloud_info: dict
    timings: dict[str, float]
    refinement: dict = dataclasses.field(default_factory=dict)
    steps_done: int = 0
    l1: float = float("nan")
    batch: dict = dataclasses.field(default_factory=dict)
    """For a shape fitted in a batch: the batch's size and its joint refinement seconds."""
    threads: int = 0
    """torch's intra-op threads during the refinement."""

    @property
    def encode(self) -> bool:
        return self.cfg.fit.init == "encoder"

    @property
    def cloud_terms(self) -> SurfaceWeights:
        """The loss terms a point cloud's fit adds to the clamped L1 (:func:`~sdfkit.points_loss.cloud_weights`)."""
        fit = self.cfg.fit
        return cloud_weights(self.cloud_info.get("normals", ""), fit.normal_weight, fit.normal_points, fit.normal_every)


def check_request(opts: FitRequest, out: Path) -> str:
    """One-line errors for a bad request, before any work; returns the export format."""
    if opts.normals not in ("auto", "given", "estimate"):
        raise SdfkitError(f"--normals must be auto, given or estimate, got '{opts.normals}'")
    if opts.denoise not in ("auto", "on", "off"):
        raise SdfkitError(f"--denoise must be auto, on or off, got '{opts.denoise}'")
    fmt = opts.format.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise SdfkitError(f"unknown --format '{opts.format}' (choose from {', '.join(EXPORT_FORMATS)})")
    if out.exists() and not out.is_dir():
        raise SdfkitError(f"--out {out} exists and is not a folder")
    refuse_existing(out, opts.force)
    check_faces(opts.faces)
    return fmt


def prepare_fit(mesh_path: Path, out: Path, fmt: str, opts: FitRequest, dev: torch.device, bar: Reporter,
                loaded: tuple[ModulatedSiren, SdfkitConfig, str] | None = None) -> PreparedFit:
    """Read, sample and bind ``mesh_path`` to its grid, and start its codes (the encoder's, or noise).

    loaded : the decoder, its settings and id, when the caller has loaded them already (a batch).
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    stage = bar.stage("prepare")
    # One trip for the input: read and cleaned once, normalised once; every stage gets these objects.
    scan = is_point_cloud(mesh_path)
    gt, mesh_hash = (None, "") if scan else read_mesh(mesh_path)
    decoder, base_cfg, dec_id = loaded or load_decoder(opts.decoder)
    cfg = settle_on_device(fit_settings(base_cfg, opts, dec_id), dev)
    sampling = cfg.sampling.resolve(seed=cfg.fit.seed)
    cloud, cloud_info = None, {}
    if scan:  # no faces: signs from the cloud's (given or estimated) normals, scored against its points
        samples, cloud, cloud_info, gt_unit, exact_sdf = prepare_cloud(mesh_path, sampling, opts.normals,
                                                                       opts.denoise)
        mesh_hash = samples.mesh_hash
    else:
        assert gt is not None  # read above
        gt_unit, normalization = normalize_mesh(gt, sampling.radius)
        # The exact distances in forked processes, one per core (each point's distance is the same however split).
        samples = sample_unit_mesh(gt_unit, normalization, sampling, str(mesh_path.resolve()), mesh_hash,
                                   default_workers())
        exact_sdf = MeshSDF(gt_unit)
    scene = make_scene(samples, cfg, name=mesh_path.stem, seed=cfg.fit.seed, mesh_unit=gt_unit).to(dev)
    decoder = decoder.to(dev)
    timings["prepare"] = time.perf_counter() - t
    stage.done()
    prepared = PreparedFit(mesh_path, out, fmt, gt, mesh_hash, decoder, cfg, dec_id, samples, scene, cloud,
                           cloud_info, timings)
    if prepared.encode:  # the encoder reads a mesh's exact SDF, or a cloud's estimate of it (winding-number signs)
        t = time.perf_counter()
        with torch.no_grad():
            scene.grid.codes.copy_(encoder_codes(scene, dec_id, exact_sdf, opts.encoder))
        timings["init"] = time.perf_counter() - t
    return prepared


def refine_fit(prepared: PreparedFit, opts: FitRequest, bar: Reporter) -> None:
    """Refine one prepared fit's codes (Adam or LM, the decoder frozen), never ending worse than the encoder's."""
    decoder, scene, cfg, samples = prepared.decoder, prepared.scene, prepared.cfg, prepared.samples
    t = time.perf_counter()
    stage = bar.stage("fit", total=cfg.fit.steps, budget_s=opts.max_seconds)
    scan = prepared.cloud is not None
    extra = (cloud_loss(decoder, scene.grid, samples.surface_points, samples.surface_normals,
                        prepared.cloud_terms, cfg.loss.band, cfg.fit.seed) if scan else None)
    # The LM sweeps fit the clamped L1 alone; a point cloud's normal terms need Adam.
    lm = cfg.fit.optimizer == "lm" and not scan
    refinement: list[dict] = [{}]
    prepared.threads = torch.get_num_threads()
    if lm and prepared.encode:
        steps_done, l1, refinement = refine_no_worse(
            decoder, scene, cfg, lambda: lm_refine(decoder, scene, cfg, opts.max_seconds, bar, stage))
    elif lm:
        steps_done, l1 = lm_refine(decoder, scene, cfg, opts.max_seconds, bar, stage)
    elif prepared.encode:
        steps_done, l1, refinement = refine_no_worse(
            decoder, scene, cfg,
            lambda: fit_codes(decoder, scene, cfg, opts.max_seconds, bar, stage, extra_loss=extra))
    else:
        steps_done, l1 = fit_codes(decoder, scene, cfg, opts.max_seconds, bar, stage, extra_loss=extra)
    stage.update(completed=steps_done, loss=l1)  # fit_codes reports every few steps; the log's last line is exact
    stage.done()
    prepared.timings["fit"] = time.perf_counter() - t
    prepared.steps_done, prepared.l1, prepared.refinement = steps_done, l1, refinement[0]
    prepared.cfg = replace_section(cfg, "fit", optimizer="lm" if lm else "adam")


def refine_batch(batch: Sequence[PreparedFit], opts: FitRequest, bar: Reporter) -> None:
    """Refine several prepared mesh fits' codes together with Adam: one decoder pass a step serves every shape,
    each shape's codes following its own loss (:func:`fit_codes`). They share the decoder and the fit settings;
    ``opts.max_seconds`` is a budget per shape, so the batch has their sum."""
    first = batch[0]
    decoder, cfg, scenes = first.decoder, first.cfg, [p.scene for p in batch]
    if any(p.cloud is not None or p.cfg.fit != cfg.fit or p.decoder is not decoder for p in batch):
        raise SdfkitError("a batch of fits needs meshes (not point clouds) with one decoder and one fit setting")
    budget = opts.max_seconds * len(batch) if opts.max_seconds is not None else None
    threads = torch.get_num_threads()
    t = time.perf_counter()
    stage = bar.stage("fit", total=cfg.fit.steps, budget_s=budget)
    stage.update(note=f"{len(batch)} shapes")
    run = lambda: fit_codes(decoder, scenes, cfg, budget, bar, stage)  # noqa: E731
    if first.encode:
        steps_done, l1, refinement = refine_no_worse(decoder, scenes, cfg, run)
    else:
        (steps_done, l1), refinement = run(), [{} for _ in batch]
    stage.update(completed=steps_done, loss=l1)
    stage.done()
    seconds = time.perf_counter() - t
    for prepared, outcome in zip(batch, refinement):
        prepared.timings["fit"] = seconds / len(batch)  # each shape's share of the joint refinement
        prepared.steps_done, prepared.l1, prepared.refinement = steps_done, l1, outcome
        prepared.threads = threads
        prepared.batch = {"shapes": len(batch), "fit_seconds": round(seconds, 3)}
        prepared.cfg = replace_section(prepared.cfg, "fit", optimizer="adam")


def extract_fit(prepared: PreparedFit, keep_unsupported: bool = False, bar: Reporter | None = None
                ) -> tuple[NeuralField, trimesh.Trimesh, trimesh.Trimesh, dict | None]:
    """A prepared fit's field and its mesh as ``sdfkit fit`` extracts it: (field, the mesh marching cubes gave, the
    mesh kept, what was dropped: None with ``keep_unsupported``, else :func:`drop_unsupported`'s report)."""
    cfg, scene, samples = prepared.cfg, prepared.scene, prepared.samples
    field = NeuralField(prepared.decoder, scene.grid, cfg.loss.band)
    extracted = extract_mesh(field, resolution=cfg.fit.resolution, bounds=scene.grid.spec.bounds,
                             normalization=samples.normalization, progress=bar if bar is not None else False,
                             region=field.may_cross)
    if keep_unsupported:
        return field, extracted, extracted, None
    recon, unsupported = drop_unsupported(extracted, samples.surface_points, samples.normalization, scene.grid.spec,
                                          cfg.fit.resolution)
    return field, extracted, recon, unsupported


def finish_fit(prepared: PreparedFit, opts: FitRequest, bar: Reporter, preview: Drawer | None = None) -> FitResult:
    """Extract, score and write a refined fit's output folder (under a temporary name, renamed when complete)."""
    decoder, scene, cfg, samples, gt = prepared.decoder, prepared.scene, prepared.cfg, prepared.samples, prepared.gt
    timings, out, fmt = prepared.timings, prepared.out, prepared.fmt
    t = time.perf_counter()
    field, extracted, recon, unsupported = extract_fit(prepared, opts.keep_unsupported, bar)
    lo, hi = scene.grid.spec.bounds
    timings["extract"] = time.perf_counter() - t

    # Scoring (NumPy and point-cloud-utils on one core) runs in forked children beside the writing and the
    # preview, which use the main process's core: the report's stage seconds then add up to more than its total.
    if prepared.cloud is not None:
        cloud_points = prepared.cloud.points
        score = Beside(lambda: evaluate_to_points(recon, cloud_points))
    else:
        assert gt is not None  # every mesh input was read
        mesh = gt
        score = Beside(lambda: evaluate_meshes(recon, mesh))
    beside: list[Beside] = [score]
    try:
        tmp = make_temp_dir(out)
    except OSError as exc:
        score.cancel()
        raise SdfkitError(describe_os_error(out, exc)) from None
    # On a CPU the children take a core: torch keeps to one thread until they end. Two threads spinning against
    # them made the preview about 1.5 times as long (benchmarks/results/cpu_targets-object-beside-{a,b}-20261207).
    dev = scene.points.device
    try:
        with torch_threads_kept(1 if dev.type == "cpu" and can_fork() else None):
            t = time.perf_counter()
            mesh_file = mesh_file_name(fmt)
            with bar.stage("write"):
                simplified, meshes = write_simplified(recon, tmp / mesh_file, opts.faces,
                                                      tmp / mesh_file_name(fmt, full=True) if opts.keep_full else None)
                # A cloud has no faces to frame by: its reconstruction's own frame serves.
                to_full = Beside(lambda: simplification_chamfer(simplified, recon, gt if gt is not None else recon))
                beside.append(to_full)
                write_latents(tmp / LATENTS, decoder, cfg, scene.grid, samples.normalization, prepared.mesh_path,
                              prepared.mesh_hash, mesh_file, samples.surface_points)
            timings["write"] = time.perf_counter() - t
            result = FitResult({}, recon, gt, field, samples.normalization, (lo, hi), simplified,
                               extracted if extracted is not recon else None)
            if preview is not None and opts.preview:
                t = time.perf_counter()
                preview(tmp / PREVIEW, result)
                timings["preview"] = time.perf_counter() - t
        with bar.stage("score"):
            metrics = score.result()
            meshes["mesh"]["chamfer_to_full"] = to_full.result()
        timings["score"] = score.seconds + to_full.seconds
        result.report = report = {
            "input": str(prepared.mesh_path.resolve()),
            "mesh": mesh_file,
            "metrics": metrics,
            "scored": "full",
            "meshes": meshes,
            "init": cfg.fit.init,
            "optimizer": cfg.fit.optimizer,
            "steps": prepared.steps_done,
            "refinement": prepared.refinement,
            "batch_points": fit_batch_points(cfg, scene.grid.num_codes),
            "final_l1_cells": prepared.l1,
            "seconds": {k: round(v, 3) for k, v in timings.items()},
            # Wall-clock: every stage but the scoring, which ran beside them, and the wait for its end.
            "seconds_total": round(sum(v for k, v in timings.items() if k != "score")
                                   + score.waited + to_full.waited, 3),
            "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
            "machine": f"{device_name(torch.device('cpu'))}, {os.cpu_count()} cores",
            "threads": prepared.threads,
            "decoder_id": prepared.dec_id,
            "tiles": {"grid": list(scene.grid.spec.cells), "active": scene.grid.num_codes},
            "config": {"fit": dataclasses.asdict(cfg.fit), "grid": dataclasses.asdict(cfg.grid),
                       "sampling": dataclasses.asdict(cfg.sampling)},
        }
        if unsupported is not None:
            report["unsupported_parts"] = unsupported
        if prepared.batch:
            report["batch"] = prepared.batch
        if prepared.cloud is not None:
            info = prepared.cloud_info
            report["point_cloud"] = {**info, "loss": describe_cloud_loss(prepared.cloud_terms)}
        write_report(tmp / REPORT, report)
        replace_dir(tmp, out)
    except OSError as exc:  # disk full, read-only folder: one line, and no half-written folder
        for job in beside:
            job.cancel()
        shutil.rmtree(tmp, ignore_errors=True)
        raise SdfkitError(describe_os_error(out, exc)) from None
    except BaseException:
        for job in beside:
            job.cancel()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def fit_mesh(mesh_path: str | Path, out_dir: str | Path, opts: FitRequest | None = None, progress: bool = True,
             preview: Drawer | None = None) -> FitResult:
    """Fit ``mesh_path`` with a frozen decoder and write ``out_dir`` (mesh, latents, report and, given a
    ``preview`` drawer and ``opts.preview``, ``preview.png``).

    Returns the report (also written to ``out_dir/report.json``) with the meshes and field behind it.
    """
    opts = opts or FitRequest()
    mesh_path, out = Path(mesh_path), Path(out_dir)
    fmt = check_request(opts, out)
    dev = resolve_device(opts.device)
    bar = Reporter(progress)
    with output_lock(out), bar:
        prepared = prepare_fit(mesh_path, out, fmt, opts, dev, bar)
        refine_fit(prepared, opts, bar)
        return finish_fit(prepared, opts, bar, preview)
