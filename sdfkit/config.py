"""The config schema: every setting of the method, as dataclasses mirrored by ``configs/*.yaml``.

Every field has a default; a YAML file overrides what it names, and CLI
options override the YAML (CLI > YAML > defaults). Unknown keys are rejected
(:mod:`data_prep.yaml_io` maps YAML onto these classes); values are checked in
``__post_init__``, so a setting is validated the same way whether it came from
a file, a CLI option or code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from data_prep.errors import SdfkitError
from data_prep.sampling import SamplingConfig, sampling_preset
from data_prep.yaml_io import from_dict, load_yaml, override, to_dict  # noqa: F401  (the schema's loaders)
from sdfkit.extract import check_resolution

Precision = Literal["fp32", "tf32", "bf16"]
#: A fit's precision may also be ``auto``: :func:`sdfkit.runtime.resolve_precision` picks it for the device.
FitPrecision = Literal["auto", "fp32", "tf32", "bf16"]
#: Bounds of a grid's resolution (the marching-cubes resolution's are every command's:
#: :data:`sdfkit.extract.RESOLUTION_RANGE`).
GRID_RESOLUTION_RANGE = (1, 256)
#: A refinement's weight floor where its forward passes run in float32 (:attr:`FitConfig.refine_weight_floor`).
FP32_WEIGHT_FLOOR = 0.05


def check_precision(value: str, names: object = Precision) -> str:
    """``value`` if it names a :data:`Precision` (or one of ``names``' values), else a one-line error."""
    if value not in get_args(names):
        raise SdfkitError(f"unknown precision '{value}' (use {', '.join(get_args(names))})")
    return value


@dataclass
class ModelConfig:
    """The decoder: the modulated SIREN, or a baseline (``sdfkit.models.baselines``)."""

    kind: Literal["modulated_siren", "relu_concat", "siren_concat", "fourier_concat"] = "modulated_siren"
    """Decoder family; the baselines take the latent code concatenated to their input."""
    hidden: int = 64
    """Width of every synthesis and modulation layer."""
    layers: int = 4
    """Number of sine layers (and of modulation layers)."""
    latent_dim: int = 64
    """Size of each tile's latent code."""
    w0: float = 30.0
    """SIREN frequency factor, applied to tile-local coordinates in [-1, 1]."""
    skip_layer: int | None = None
    """relu_concat: the layer whose input is re-concatenated with the decoder's input (DeepSDF's skip); unset: none."""
    fourier_features: int = 64
    """fourier_concat: number of random frequencies (the embedding has twice as many values)."""
    fourier_scale: float = 4.0
    """fourier_concat: standard deviation of the random frequencies, in cycles per unit of input."""


@dataclass
class GridConfig:
    """The sparse tile grid laid over a scene."""

    layout: Literal["local", "global"] = "local"
    """``local``: a code per tile near the surface; ``global``: one code for the whole scene
    (one cell over the padded box, the decoder sees box coordinates in [-1, 1])."""
    resolution: int | None = None
    """Cells along the longest axis of the scene's normalised bounding box; unset: chosen
    from the size of the objects in the scene (see ``cells_per_object``)."""
    cells_per_object: float = 40.0
    """Automatic resolution: cells along the bounding-box diagonal of a typical object
    (the median of the mesh's large objects, an object being parts whose boxes touch or
    overlap: ``data_prep/objects.py``), so a scene of many objects gets as fine tiles per
    object as a single one, and a CAD model of many parts is one object."""
    cells_per_cad_object: float | None = None
    """Automatic resolution of a CAD model (a typical object of at least ``data_prep.objects.CAD_MIN_PARTS``
    parts): cells along its diagonal, instead of ``cells_per_object``; unset: ``cells_per_object`` for every mesh."""
    min_codes_per_object: int = 4096
    """Automatic resolution: where the typical objects' active tiles number fewer than this each, the resolution
    is raised by the square root of the shortfall (a surface's tiles grow with the square of the resolution), up to
    ``max_resolution``. A long, thin shape gets as many cells along its diagonal as a round one, but far fewer
    tiles on its surface; a refinement step's 8,192 points give each of 4,096 codes two. human_woman's 2,075 tiles
    became 3,823, halving its Chamfer (9.327e-07 against 1.779e-06) and lifting its IoU from 0.9940 to 0.9956 in
    no more time (``benchmarks/results/fast_fit-min-codes-20261208.md``). 0: never raised."""
    max_resolution: int = 160
    """Upper bound of the automatic resolution."""
    padding_cells: int = 1
    """Extra cells around the bounding box on every side."""
    margin: float = 0.25
    """Activation slack, in cells, on top of the sqrt(3) cells a tile's region reaches."""
    init_std: float = 0.01
    """Codes are initialised from N(0, init_std^2)."""

    def __post_init__(self) -> None:
        lo, hi = GRID_RESOLUTION_RANGE
        for name in ("cells_per_object", "cells_per_cad_object"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SdfkitError(f"grid {name} must be positive, got {value}")
        if self.min_codes_per_object < 0:
            raise SdfkitError(f"grid min_codes_per_object must be at least 0, got {self.min_codes_per_object}")
        if self.resolution is not None and not lo <= self.resolution <= hi:
            raise SdfkitError(f"grid resolution (--grid-resolution) must be between {lo} and {hi}, "
                              f"got {self.resolution}")


@dataclass
class SamplingChoice:
    """Which SDF samples to draw: a named preset and overrides of it (see ``docs/sampling.md``).

    :meth:`resolve` turns the choice into the full :class:`~data_prep.sampling.SamplingConfig`.
    """

    preset: str = "default"
    """Named preset of noise scales and mix."""
    num_points: int | None = None
    """Samples per shape (preset's value when unset)."""
    volume: Literal["sphere", "bbox"] | None = None
    """Where the uniform half is drawn (preset's value when unset)."""

    def resolve(self, seed: int = 0) -> SamplingConfig:
        """The preprocessing settings this choice asks for: the preset, then the overrides."""
        changes: dict = {"seed": seed}
        if self.num_points is not None:
            changes["num_points"] = self.num_points
        if self.volume is not None:
            changes["volume"] = self.volume
        return dataclasses.replace(sampling_preset(self.preset), **changes)


@dataclass
class LossConfig:
    band: float = 1.0
    """Clamp of predictions and targets, in cells (DeepSDF-style clamped L1)."""
    code_reg: float = 1e-4
    """Weight of the L2 prior on the codes used in a step."""


@dataclass
class TrainConfig:
    """Auto-decoder training: decoder and every scene's codes jointly."""

    data: list[str] = field(default_factory=list)
    """Where the scenes come from: meshes, prepared ``.npz`` samples, folders of meshes, glob patterns,
    ``sdfkit prep`` output folders and split files (DeepSDF's or sdfkit's), resolved relative to the working
    folder by :mod:`data_prep.sources`; every mesh or samples file they name is one scene."""
    rotations: int = 0
    """Extra copies of every training mesh under random rotations (augmentation)."""
    steps: int = 2000
    batch_points: int = 65536
    """Points per step, split evenly over the scenes."""
    lr_decoder: float = 5e-4
    lr_codes: float = 1e-2
    lr_final_fraction: float = 0.1
    """Cosine schedule from the initial rates down to this fraction of them."""
    checkpoint_every: int = 250
    log_every: int = 50
    seed: int = 0
    precision: Precision = "fp32"
    """Arithmetic of the forward pass (see :func:`sdfkit.optim.precision_scope`)."""
    compile: bool = False
    """Run the synthesis network through ``torch.compile`` (one compilation, then faster steps)."""

    def __post_init__(self) -> None:
        check_precision(self.precision)


@dataclass
class FitConfig:
    """Fitting a new scene: decoder frozen, codes only."""

    init: Literal["auto", "encoder", "random"] = "auto"
    """Where the codes start: ``encoder``, the encoder's prediction (then the ``refine_*`` settings where ``steps``,
    ``lr`` and ``points_per_code`` are not asked for), or ``random``, noise (then ``steps``, the auto-decoder's way);
    ``auto``: the encoder when one serves the decoder (the shipped decoder has one), else random."""
    steps: int = 600
    batch_points: int | None = None
    """Points per step; unset: ``points_per_code`` x the number of codes, within [8192, 262144]."""
    points_per_code: float = 3.0
    lr: float = 2e-2
    refine_steps: int = 250
    """Steps after the encoder's codes, when neither the config file nor ``--steps`` sets ``steps``: the fewest
    measured that keep the five val meshes within 1.5 times the Chamfer of a 600-step fit from noise. From the same
    encoder codes, 250 steps in bf16 without the weight floor ended 3.8-25.5% below 200 in float32 with it, in 0.79
    to 1.07 times the time, the sphere (whose fit from noise comes closest to its oracle) at 3.797e-08 against
    5.095e-08 (``benchmarks/results/refine_schedule-bf16-20261208.md``). Before: 200 steps ended at 1.00 to 1.21
    times the 600-step fit on four meshes and 1.94 on the sphere (``fast_fit-acceptance-golden-20261207.md``).
    Without the floor and the average, over three seeds, 250 steps ended at 0.95 to 1.24 times and 200 at up to 1.45
    (the torus), with the parts no input sample supports dropped from the mesh (``sdfkit fit`` does so by default);
    without the drop, stray blobs of field beyond the samples' reach would be scored at 200 to 300 steps in 9 of 45
    fits (``stray_parts-trim-*-20261206.md``; BENCHMARKS.md, "Unsupported parts dropped, and 250 refinement
    steps")."""
    refine_lr: float = 5e-2
    refine_points_per_code: float = 1.0
    """After the encoder: the peak rate and the points per code, where the config file sets no ``lr`` or
    ``points_per_code`` (and ``--lr`` is not given). Codes that start near the answer take more, cheaper steps at a
    higher rate than codes from noise: ``benchmarks/results/fast_fit-sweep*-penguin-20261129.md``."""
    surface_fraction: float = 0.0
    refine_surface_fraction: float = 0.9
    """Share of each step's points drawn from the samples within ``surface_band`` cells of the surface, the rest
    from all samples (``refine_*``: after the encoder, where the config file sets no ``surface_fraction``). At the
    same cost per step it ends at 0.94-1.23 times the 600-step fit's Chamfer on the four val meshes with one, where
    0 (every sample alike) ends at 1.07-1.87 (``benchmarks/results/fast_fit-surface-*.md``); scenes end higher,
    within 2 times the oracle's: the five as one at 1.37 against 1.27, ``scene_a`` at 1.95 against 1.72
    (``fast_fit-scene*-20261205.md``). On a zero-thickness sheet of the input (the robustness corpus's fin) the
    field dips below zero on a few percent of it with either draw: less with this one after 400 steps (0.013 cells
    at most, against 0.019), as much after 20 (0.07 cells), where the extraction then catches a sliver of it
    (``benchmarks/results/sheet_fin.md``)."""
    surface_band: float = 0.25
    """Cells from the surface (by the samples' exact distance) within which a sample counts for ``surface_fraction``."""
    stratify: bool = True
    """Each step's points one per stratum of the samples along a space-filling curve (:class:`sdfkit.scene.BatchDraw`),
    instead of drawn independently: every region gets its share of a step. From the same encoder codes 200 steps
    ended 0.2-21% lower in Chamfer on the five val meshes (``benchmarks/results/refine_schedule-golden-20261207.md``).
    False: independent draws, with replacement."""
    weight_floor: float | None = 0.0
    refine_weight_floor: float | None = None
    """A point's tiles whose blending weight is below this add to its prediction but send no gradient to their
    codes (:func:`sdfkit.optim.backward_in_chunks`; ``refine_*``: after the encoder, where the config file sets no
    ``weight_floor``). At most 1/8, the least weight a point's heaviest tile has. None: :data:`FP32_WEIGHT_FLOOR`
    where the steps' forward passes run in float32, 0 in bf16 (:func:`sdfkit.fit.settle_on_device`). From the same
    encoder codes, 250 steps at 0.05 took 0.67-0.95 times as long as at 0 in float32, at -2% to +14% of the
    Chamfer; in bf16 they took 0.86-1.27 times as long, at +3.5% to +14.7%: there the floor's second forward pass costs
    what the backward passes it skips save (``benchmarks/results/refine_schedule-bf16-20261208.md``)."""
    average: float = 0.0
    refine_average: float = 0.9
    """The fit ends on a running average of its steps' codes, each step's weighing ``1 - average`` against the
    average before it (0: the last step's codes; ``refine_*``: after the encoder, where the config file sets no
    ``average``). The steps of a small batch scatter the codes about their optimum, and the average cancels part of
    that scatter at no cost per step: at 0.9, 225 steps ended 4.6-7.4% below the Chamfer of 225 without it on four
    val meshes, and 200 steps at -4% to +2% of it (``benchmarks/results/code_average-20261207.md``; 0.8 and 0.95
    did no better on two of them, ``refine_schedule-20261207.md``)."""
    lr_final_fraction: float = 0.05
    optimizer: Literal["adam", "lm"] = "adam"
    """How the codes are refined: ``adam`` (``steps`` gradient steps) or ``lm``, Levenberg-Marquardt sweeps over
    the tiles colour by colour (:mod:`sdfkit.lm`; ``steps`` then counts sweeps, ``lm_sweeps`` after the encoder
    unless ``steps`` is asked for)."""
    lm_sweeps: int = 4
    lm_points_per_code: float = 16.0
    """Samples drawn per code for each LM sweep."""
    resolution: int = 256
    """Marching-cubes resolution of the extracted mesh."""
    normal_weight: float = 0.1
    """A point cloud whose file has normals: weight of normal alignment (``1 - cos(grad f, n)`` at cloud points,
    :mod:`sdfkit.points_loss`) against the clamped L1; 0 turns it off. Estimated normals get no such term."""
    normal_points: int = 4096
    """Cloud points at which the normal term is taken each step."""
    normal_every: int = 2
    """Take the normal term every this many steps, at this many times its weight: the same mean gradient for
    fewer of its passes, each of which costs about as much as a step's main loss. Every second step refined four
    clouds in 15-33% less time at -7% to +2% of the Chamfer (BENCHMARKS.md, "The normal term every second step")."""
    seed: int = 0
    precision: FitPrecision = "auto"
    """Arithmetic of the steps' forward passes (:func:`sdfkit.optim.precision_scope`). ``auto``: bf16 on a CPU with
    bf16 dot-product instructions (AVX512-BF16 or AMX), float32 elsewhere, GPUs included
    (:func:`sdfkit.runtime.resolve_precision`). On the 2-core EPYC, which has them, 250 refinement steps in bf16 took
    0.47-0.71 times as long as in float32 on the five val meshes, at -3.2% to +1.5% of the Chamfer
    (``benchmarks/results/refine_schedule-bf16-20261208.md``). Extraction, scoring and the viewer stay float32."""
    compile: bool = False
    """Run the synthesis network through ``torch.compile`` (one compilation, then faster steps on a GPU; on the
    2-core CPU the penguin's fit was slower and its Chamfer higher: ``fast_fit-compile-penguin-quiet-20261206.md``)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, FitPrecision)
        if not (self.normal_weight >= 0 and self.normal_points >= 1 and self.normal_every >= 1):
            raise SdfkitError("fit.normal_weight must be at least 0, fit.normal_points and fit.normal_every at least 1")
        # The encoder's codes are a fit of their own: zero refinement steps is a valid request.
        fewest = 0 if self.init == "encoder" else 1
        if self.optimizer not in ("adam", "lm"):
            raise SdfkitError(f"unknown fit optimizer '{self.optimizer}' (use adam or lm)")
        if self.lm_sweeps < 0 or not self.lm_points_per_code > 0:
            raise SdfkitError("fit.lm_sweeps must be at least 0 and fit.lm_points_per_code positive")
        if not (self.lr > 0 and self.refine_lr > 0 and self.points_per_code > 0 and self.refine_points_per_code > 0):
            raise SdfkitError("fit rates and points per code (lr, refine_lr, points_per_code, "
                              "refine_points_per_code) must be positive")
        if not (0.0 <= self.surface_fraction <= 1.0 and 0.0 <= self.refine_surface_fraction <= 1.0
                and self.surface_band > 0):
            raise SdfkitError("fit surface_fraction and refine_surface_fraction must be in [0, 1] and surface_band "
                              "positive")
        if not all(floor is None or 0.0 <= floor <= 0.125 for floor in (self.weight_floor, self.refine_weight_floor)):
            raise SdfkitError("fit weight_floor and refine_weight_floor must be in [0, 0.125] (or unset)")
        if not (0.0 <= self.average < 1.0 and 0.0 <= self.refine_average < 1.0):
            raise SdfkitError("fit average and refine_average must be in [0, 1)")
        if self.steps < fewest or self.refine_steps < 0 or (self.batch_points is not None and self.batch_points < 1):
            raise SdfkitError("fit steps and batch points (--steps, --batch-points) must be at least 1 "
                              "(steps 0 with --init encoder)")
        check_resolution(self.resolution)


@dataclass
class EncoderModelConfig:
    """The encoder network and what it reads."""

    lattice: int = 5
    """Lattice points per axis over a tile's region [-1, 1]^3 (odd: the lattice is shared by neighbouring tiles)."""
    clamp: float = 2.0
    """Exact distances are read in cell units, clamped to [-clamp, clamp] (a tile's region reaches sqrt(3) cells)."""
    hidden: int = 256
    """Width of the hidden layers."""
    layers: int = 3
    """Linear layers (ReLU between them)."""

    def __post_init__(self) -> None:
        if self.lattice < 3 or self.lattice % 2 == 0:
            raise SdfkitError(f"encoder lattice must be odd and at least 3, got {self.lattice}")
        if self.layers < 1 or self.hidden < 1 or not self.clamp > 0:
            raise SdfkitError("encoder layers, hidden and clamp must be positive")


@dataclass
class EncoderTrainConfig:
    """Training through the frozen decoder on the training meshes' tiles."""

    data: list[str] = field(default_factory=list)
    """Training meshes: files, folders, glob patterns or split files (:mod:`data_prep.sources`)."""
    val_data: list[str] = field(default_factory=list)
    """Held-out meshes whose blended L1 is logged every ``val_every`` steps (none: no held-out figure)."""
    rotations: int = 0
    """Extra copies of every mesh under random rotations."""
    num_points: int = 200000
    """SDF samples drawn per mesh (the decoder's sampling preset, fewer points)."""
    steps: int = 2000
    max_seconds: float | None = None
    """Stop when this time is spent (the cosine learning rate anneals over it)."""
    cells_per_step: int = 512
    """Grid cells drawn per step from every mesh's cells; their corner tiles are encoded."""
    samples_per_cell: int = 16
    """Samples per drawn cell and step, scored on the blend of the cell's 8 tiles."""
    lr: float = 1e-3
    lr_final_fraction: float = 0.05
    seed: int = 0
    log_every: int = 50
    val_every: int = 500
    init: str | None = None
    """An encoder file to start from instead of random weights (fine-tuning it): it must serve the same decoder
    and have the network of ``model``."""

    def __post_init__(self) -> None:
        if min(self.steps, self.cells_per_step, self.samples_per_cell, self.log_every, self.val_every) < 1:
            raise SdfkitError("encoder train steps, cells_per_step, samples_per_cell, log_every and val_every "
                              "must be at least 1")
        if self.rotations < 0 or not self.lr > 0:
            raise SdfkitError("encoder train rotations must be at least 0 and lr positive")


@dataclass
class EncoderConfig:
    """The code encoder of ``sdfkit train-encoder`` (:mod:`sdfkit.encoder`): the ``encoder`` section of a config."""

    model: EncoderModelConfig = field(default_factory=EncoderModelConfig)
    train: EncoderTrainConfig = field(default_factory=EncoderTrainConfig)


@dataclass
class SdfkitConfig:
    """A named, versioned setting of the whole method (one ``configs/*.yaml``)."""

    name: str = "custom"
    version: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    sampling: SamplingChoice = field(default_factory=SamplingChoice)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)


def load_settings(path: str | Path) -> SdfkitConfig:
    """Read ``path`` (YAML) onto :class:`SdfkitConfig`, rejecting unknown keys by name."""
    return from_dict(SdfkitConfig, load_yaml(path))


def settings_from_dict(data: dict) -> SdfkitConfig:
    return from_dict(SdfkitConfig, data)


ConfigT = TypeVar("ConfigT", bound=Any)


def replace_section(cfg: ConfigT, section: str, **changes) -> ConfigT:
    """Copy of the config dataclass ``cfg`` with non-None ``changes`` applied to one section (CLI > YAML)."""
    sub = dataclasses.replace(getattr(cfg, section), **{k: v for k, v in changes.items() if v is not None})
    return dataclasses.replace(cfg, **{section: sub})
