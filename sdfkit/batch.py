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

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from data_prep.dataset import TOP_CLASS
from data_prep.files import atomic_write_text
from data_prep.mesh import load_mesh
from data_prep.sources import GLOB_CHARS, resolve_shapes, source_mesh
from sdfkit.conventions import convention_metrics
from sdfkit.errors import SdfkitError
from sdfkit.fit import Drawer, FitRequest, fit_mesh, output_lock
from sdfkit.fit_output import REPORT
from sdfkit.metrics import METRIC_KEYS

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


def fit_folder(source: str | Path, out_dir: str | Path, opts: FitRequest | None = None,
               progress: bool = True, on_mesh: Callable[[dict], None] | None = None,
               preview: Drawer | None = None, conventions: tuple[str, ...] = ()) -> tuple[list[dict], dict]:
    """Fit every mesh ``source`` names into ``out_dir``; resumable, tolerant of bad meshes.

    conventions : also score each fitted mesh in these papers' conventions (``deepsdf``, ``occnet``;
    :mod:`sdfkit.conventions`), kept in ``<mesh folder>/metrics-<convention>.json`` so a rerun reuses them.
    opts : the per-mesh fit options (``force`` refits finished meshes too).
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
    jobs = batch_jobs(source)
    rows: dict[str, dict] = {}
    with output_lock(out):
        out.mkdir(parents=True, exist_ok=True)
        for job in jobs:
            folder = out / job.name
            report = None if opts.force else read_report(folder)
            if report is not None:
                row = summary_row(job.name, report, "skipped (finished before)")
            else:
                try:
                    report = fit_mesh(job.mesh, folder, dataclasses.replace(opts, force=True), progress=progress,
                                      preview=preview).report
                    row = summary_row(job.name, report, "fitted")
                except SdfkitError as exc:
                    row = summary_row(job.name, None, "failed", str(exc))
                except MemoryError:
                    row = summary_row(job.name, None, "failed", "out of memory")
                except Exception as exc:  # a library failing on one odd mesh must not stop the folder
                    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
                    row = summary_row(job.name, None, "failed", f"{type(exc).__name__}: {text}")
            if report is not None and row["status"] != "failed":
                for convention in conventions:
                    row.update(convention_scores(folder, report, job.mesh, convention))
            rows[job.name] = row
            write_summary(out, list(rows.values()))
            if on_mesh is not None:
                on_mesh(row)
    ordered = list(rows.values())
    return ordered, summary_stats(ordered)
