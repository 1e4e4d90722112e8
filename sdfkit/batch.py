"""Fit every mesh of a folder, glob pattern, prep output or split file with one decoder.

Each mesh is fitted by :func:`sdfkit.fit.fit_mesh` into its own folder,
``<out>/<class>/<instance>/`` (``<out>/<instance>/`` for meshes at the top),
which is written under a temporary name and renamed when complete. A mesh
whose folder holds a ``report.json`` is therefore finished, and a rerun after
a kill skips it. A mesh that fails is recorded with its one-line reason and
the others go on; a rerun tries it again.

After every mesh, ``<out>/summary.csv`` (one row per mesh) and
``<out>/summary.md`` (the rows and the median, mean and standard deviation of
each metric over the fitted meshes) are rewritten atomically, so a killed run
leaves a summary of what it finished.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from data_prep.dataset import TOP_CLASS
from data_prep.files import atomic_write_text
from data_prep.mesh import load_mesh
from data_prep.sources import GLOB_CHARS, resolve_shapes, source_mesh
from sdfkit.conventions import convention_metrics
from sdfkit.decoder_io import load_decoder
from sdfkit.errors import SdfkitError
from sdfkit.fit import (
    Drawer,
    FitRequest,
    PreparedFit,
    check_request,
    finish_fit,
    fit_mesh,
    output_lock,
    prepare_fit,
    refine_batch,
)
from sdfkit.fit_output import REPORT
from sdfkit.metrics import METRIC_KEYS
from sdfkit.progress import Reporter
from sdfkit.runtime import resolve_device

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
#: Columns of summary.csv after the metrics.
EXTRA_COLUMNS = ("steps", "seconds", "status", "reason")


@dataclasses.dataclass
class MeshJob:
    """One mesh of a folder fit: its mesh file and its output folder relative to the batch's."""

    mesh: Path
    name: str
    """``class/instance`` (or ``instance`` at the top): the output folder, relative."""


def is_batch_source(path: str | Path) -> bool:
    """Whether ``sdfkit fit`` should fit many meshes: a folder, a glob pattern or a split file."""
    text = str(path)
    return Path(text).is_dir() or any(ch in text for ch in GLOB_CHARS) or Path(text).suffix.lower() == ".json"


def default_out(source: str | Path) -> Path:
    """``runs/<name>`` for a mesh, folder or split file; a glob pattern needs an explicit ``--out``."""
    path = Path(source)
    if any(ch in str(source) for ch in GLOB_CHARS):
        raise SdfkitError(f"fitting a glob pattern ({source}) needs --out DIR")
    return Path("runs") / (path.name if path.is_dir() else path.stem)


def batch_jobs(source: str | Path) -> list[MeshJob]:
    """The meshes ``source`` names (see :mod:`data_prep.sources`), each with its output folder name."""
    jobs = []
    for shape in resolve_shapes(source):
        name = shape.name if shape.group == TOP_CLASS else str(PurePosixPath(shape.group) / shape.name)
        jobs.append(MeshJob(source_mesh(shape.path), name))
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SdfkitError(f"two meshes in {source} would both be fitted into {dup}; rename one")
    return jobs


def read_report(folder: Path) -> dict | None:
    """A finished fit's report, or None when ``folder`` holds no readable one."""
    try:
        return json.loads((folder / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def summary_row(name: str, report: dict | None, status: str, reason: str = "", extra: dict | None = None) -> dict:
    """One summary row: the mesh's metrics (and ``extra`` ones), steps and seconds (empty for a failed mesh)."""
    row: dict = {"mesh": name}
    metrics = (report or {}).get("metrics", {})
    row.update({k: metrics.get(k, "") for k in METRIC_KEYS})
    row.update(extra or {})
    row.update(steps=(report or {}).get("steps", ""), seconds=(report or {}).get("seconds_total", ""),
               status=status, reason=reason)
    return row


def _metric_columns(rows: list[dict]) -> list[str]:
    """sdfkit's metrics, then any convention's (``deepsdf_*``, ``occnet_*``) that a row has."""
    extra = [k for r in rows for k in r if k not in ("mesh", *METRIC_KEYS, *EXTRA_COLUMNS)]
    return [*METRIC_KEYS, *dict.fromkeys(extra)]


def summary_stats(rows: list[dict]) -> dict[str, dict[str, float]]:
    """{metric: {median, mean, std, count}} over the rows that have it (population std)."""
    stats = {}
    for key in [*_metric_columns(rows), "seconds"]:
        values = np.array([r[key] for r in rows if r.get(key, "") != ""], dtype=np.float64)
        if len(values):
            stats[key] = {"median": float(np.median(values)), "mean": float(values.mean()),
                          "std": float(values.std()), "count": int(len(values))}
    return stats


def write_summary(out: Path, rows: list[dict]) -> dict[str, dict[str, float]]:
    """Write ``summary.csv`` and ``summary.md`` in ``out`` atomically; returns the statistics."""
    columns = ["mesh", *_metric_columns(rows), *EXTRA_COLUMNS]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / SUMMARY_CSV, buf.getvalue())
    stats = summary_stats(rows)
    fitted = sum(r["status"] != "failed" for r in rows)

    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    shown = [k for k in (*_metric_columns(rows), "seconds") if k in stats]
    lines = [f"# Folder fit: {fitted} of {len(rows)} meshes fitted", "",
             "| statistic | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for stat in ("median", "mean", "std"):
        lines.append(f"| {stat} | " + " | ".join(cell(stats[k][stat]) for k in shown) + " |")
    lines += ["", "Metrics under docs/metrics.md (GT's unit frame); std is the population standard deviation over "
              "the fitted meshes.", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c, "")).replace("|", "/") for c in columns) + " |" for r in rows]
    atomic_write_text(out / SUMMARY_MD, "\n".join(lines) + "\n")
    return stats


def convention_scores(folder: Path, report: dict, gt_path: Path, convention: str) -> dict[str, float]:
    """A fitted mesh's metrics in a paper's convention, read from ``metrics-<convention>.json`` or computed
    (the fit's mesh against the input) and written there."""
    path = folder / f"metrics-{convention}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    scores = convention_metrics(convention, load_mesh(folder / report["mesh"]), load_mesh(gt_path))
    atomic_write_text(path, json.dumps(scores, indent=2) + "\n")
    return scores


def _failure(name: str, exc: BaseException) -> dict:
    """A failed mesh's summary row: its one-line reason."""
    if isinstance(exc, SdfkitError):
        return summary_row(name, None, "failed", str(exc))
    if isinstance(exc, MemoryError):
        return summary_row(name, None, "failed", "out of memory")
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return summary_row(name, None, "failed", f"{type(exc).__name__}: {text}")


def batch_size(opts: FitRequest) -> int:
    """Shapes refined together: ``opts.batch_shapes``, else :data:`GPU_BATCH` on a GPU and 1 on a CPU (where a
    step's cost grows with its points whatever their shape, so batching saves little:
    ``benchmarks/results/batch_fit-*.md``)."""
    if opts.batch_shapes is not None:
        if opts.batch_shapes < 1:
            raise SdfkitError(f"--batch-shapes must be at least 1, got {opts.batch_shapes}")
        return opts.batch_shapes
    return GPU_BATCH if resolve_device(opts.device).type == "cuda" else 1


#: Shapes refined together on a GPU unless ``--batch-shapes`` says otherwise.
GPU_BATCH = 8


def _fit_together(jobs: list[MeshJob], out: Path, opts: FitRequest, progress: bool,
                  preview: Drawer | None) -> Iterator[tuple[MeshJob, dict | None, dict]]:
    """Fit ``jobs`` with their codes refined in one batch (:func:`sdfkit.fit.refine_batch`); yields (job,
    report or None, summary row) as each mesh is written. A mesh that fails to prepare or to write is a row of its
    own; a failed joint refinement fails every mesh of the batch."""
    dev = resolve_device(opts.device)
    loaded = load_decoder(opts.decoder)
    with contextlib.ExitStack() as held:
        bar = held.enter_context(Reporter(progress))
        prepared: list[tuple[MeshJob, PreparedFit]] = []
        for job in jobs:
            folder = out / job.name
            try:
                fmt = check_request(opts, folder)
                held.enter_context(output_lock(folder))
                prepared.append((job, prepare_fit(job.mesh, folder, fmt, opts, dev, bar, loaded)))
            except Exception as exc:  # a library failing on one odd mesh must not stop the folder
                yield job, None, _failure(job.name, exc)
        if not prepared:
            return
        try:
            refine_batch([p for _, p in prepared], opts, bar)
        except Exception as exc:  # a library failing on one odd mesh must not stop the folder
            for job, _ in prepared:
                yield job, None, _failure(job.name, exc)
            return
        for job, fit in prepared:
            try:
                report = finish_fit(fit, opts, bar, preview).report
                yield job, report, summary_row(job.name, report, "fitted")
            except Exception as exc:  # a library failing on one odd mesh must not stop the folder
                yield job, None, _failure(job.name, exc)


def _fit_alone(job: MeshJob, out: Path, opts: FitRequest, progress: bool,
               preview: Drawer | None) -> Iterator[tuple[MeshJob, dict | None, dict]]:
    try:
        report = fit_mesh(job.mesh, out / job.name, opts, progress=progress, preview=preview).report
        yield job, report, summary_row(job.name, report, "fitted")
    except Exception as exc:  # a library failing on one odd mesh must not stop the folder
        yield job, None, _failure(job.name, exc)


def fit_folder(source: str | Path, out_dir: str | Path, opts: FitRequest | None = None,
               progress: bool = True, on_mesh: Callable[[dict], None] | None = None,
               preview: Drawer | None = None, conventions: tuple[str, ...] = ()) -> tuple[list[dict], dict]:
    """Fit every mesh ``source`` names into ``out_dir``; resumable, tolerant of bad meshes.

    conventions : also score each fitted mesh in these papers' conventions (``deepsdf``, ``occnet``;
    :mod:`sdfkit.conventions`), kept in ``<mesh folder>/metrics-<convention>.json`` so a rerun reuses them.
    opts : the per-mesh fit options (``force`` refits finished meshes too; ``batch_shapes`` meshes have their
    codes refined together, :func:`batch_size`).
    preview : draws each mesh's ``preview.png`` (see :func:`sdfkit.fit.fit_mesh`).
    on_mesh : called with each summary row as soon as its mesh is done or skipped.
    Returns (rows, statistics), as written to ``summary.csv`` / ``summary.md``.
    """
    opts = opts or FitRequest()
    unknown = [c for c in conventions if c not in ("deepsdf", "occnet")]
    if unknown:
        raise SdfkitError(f"unknown --convention '{unknown[0]}' for a folder fit (choose from deepsdf, occnet)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SdfkitError(f"--out {out} exists and is not a folder")
    size = batch_size(opts)
    jobs = batch_jobs(source)
    rows: dict[str, dict] = {}

    def record(job: MeshJob, report: dict | None, row: dict) -> None:
        if report is not None and row["status"] != "failed":
            for convention in conventions:
                row.update(convention_scores(out / job.name, report, job.mesh, convention))
        rows[job.name] = row
        write_summary(out, [rows[j.name] for j in jobs if j.name in rows])
        if on_mesh is not None:
            on_mesh(row)

    with output_lock(out):
        out.mkdir(parents=True, exist_ok=True)
        pending = []
        for job in jobs:
            report = None if opts.force else read_report(out / job.name)
            if report is not None:
                record(job, report, summary_row(job.name, report, "skipped (finished before)"))
            else:
                pending.append(job)
        each = dataclasses.replace(opts, force=True)
        for start in range(0, len(pending), size):
            group = pending[start : start + size]
            fits = (_fit_alone(group[0], out, each, progress, preview) if len(group) == 1
                    else _fit_together(group, out, each, progress, preview))
            for job, report, row in fits:
                record(job, report, row)
    ordered = [rows[job.name] for job in jobs]
    return ordered, summary_stats(ordered)
