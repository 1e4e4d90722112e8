"""Row-wise NumPy work split over forked processes, for the kernels that hold the GIL.

point-cloud-utils' point-to-mesh distance kernel runs on one core and holds the GIL, so threads do not speed it
up; forked processes do. Each child inherits the inputs as they are (nothing is pickled on the way
in) and returns its rows' results. Each row's result does not depend on how the rows are split, so any number
of workers gives bit-identical output.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable

import numpy as np

#: Below this many rows per worker a process pool costs more than it saves.
MIN_ROWS_PER_WORKER = 20_000

RowFunction = Callable[[int, int], np.ndarray]

# The function a forked pool's workers call (inherited, not pickled per task).
_POOL_FN: RowFunction | None = None


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether this process may start forked workers: the platform forks, and it is not a daemonic worker itself
    (which may not have children)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def _pool_rows(bounds: tuple[int, int]) -> np.ndarray:
    assert _POOL_FN is not None
    return _POOL_FN(*bounds)


def map_rows(fn: RowFunction, count: int, workers: int) -> np.ndarray:
    """``fn(0, count)``, computed as ``fn(start, stop)`` over row ranges in up to ``workers`` forked processes and
    concatenated. ``fn`` must give each row's result independently of the range it is asked in."""
    workers = max(1, min(int(workers), count // MIN_ROWS_PER_WORKER))
    if workers == 1 or not can_fork():
        return fn(0, count)
    global _POOL_FN
    _POOL_FN = fn
    try:
        # Two ranges per worker even out rows that cost differently (near-surface and far points).
        bounds = np.linspace(0, count, 2 * workers + 1).astype(int)
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_pool_rows, list(zip(bounds[:-1].tolist(), bounds[1:].tolist())))
    finally:
        _POOL_FN = None
    return np.concatenate(parts)
