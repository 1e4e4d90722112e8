"""Work in forked processes, for the NumPy and point-cloud-utils kernels that hold the GIL: threads do not speed
them up, forked processes do. Each child inherits its inputs as they are (nothing is pickled on the way in) and
sends its result back.

- :func:`map_rows`: one row-wise computation split over the cores (the exact point-to-mesh distances). Each
  row's result does not depend on how the rows are split, so any number of workers gives bit-identical output.
- :class:`Beside`: one call computed in a child while the caller goes on (a fit's scoring beside its writing).

A child must not use torch: a forked child of a process whose OpenMP or CUDA runtime has started may hang in them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

from data_prep.errors import SdfkitError

#: Below this many rows per worker a process pool costs more than it saves.
MIN_ROWS_PER_WORKER = 20_000

RowFunction = Callable[[int, int], np.ndarray]
T = TypeVar("T")

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


class Beside(Generic[T]):
    """``fn()`` computed in a forked child process while the caller goes on; :meth:`result` waits for its value.

    The value, or the exception ``fn`` raised, comes back pickled. Where this process cannot fork
    (:func:`can_fork`), or with ``here``, ``fn()`` runs at once, in this process.
    """

    def __init__(self, fn: Callable[[], T], here: bool = False):
        self.seconds = 0.0
        """How long ``fn()`` took (in the child)."""
        self.waited = 0.0
        """How long :meth:`result` waited for it."""
        self._outcome: tuple[bool, object, float] | None = None
        self._process = None
        if here or not can_fork():
            self._outcome = _outcome_of(fn)
            return
        ctx = multiprocessing.get_context("fork")
        self._reader, writer = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_send_outcome, args=(writer, fn), daemon=True)
        self._process.start()
        writer.close()  # the child holds its own end, so the reader sees EOF if the child dies

    def result(self) -> T:
        """``fn()``'s value once the child has sent it; the exception ``fn`` raised is raised here."""
        outcome = self._outcome
        if outcome is None:
            start = time.perf_counter()
            try:
                outcome = self._reader.recv()
            except EOFError:
                outcome = (False, SdfkitError("a worker process ended without its result"), 0.0)
            finally:
                assert self._process is not None  # a child was started, or the outcome is known
                self._process.join()
                self._reader.close()
                self.waited = time.perf_counter() - start
            self._outcome = outcome
        ok, value, self.seconds = outcome
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    def cancel(self) -> None:
        """Stop the child if it still runs (its result is no longer wanted); nothing if the result came."""
        if self._outcome is None and self._process is not None:
            self._process.terminate()
            self._process.join()
            self._reader.close()
            self._outcome = (False, SdfkitError("cancelled"), 0.0)


def _send_outcome(writer, fn: Callable[[], object]) -> None:
    """The child's work: ``fn``'s outcome down the pipe. Ctrl-C is the parent's to handle (the child, a daemon,
    ends with it), and a value that cannot be pickled comes back as a one-line error, not a child's traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome = _outcome_of(fn)
    try:
        writer.send(outcome)
    except Exception as exc:
        writer.send((False, SdfkitError(f"a worker's result could not be sent back: {exc}"), outcome[2]))


def _outcome_of(fn: Callable[[], object]) -> tuple[bool, object, float]:
    """(True, fn(), seconds), or (False, the exception it raised, seconds)."""
    start = time.perf_counter()
    try:
        return True, fn(), time.perf_counter() - start
    except Exception as exc:  # handed to the caller of Beside.result, which raises it
        return False, exc, time.perf_counter() - start
