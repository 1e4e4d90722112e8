"""``data_prep.forked``: rows computed in forked processes come back in order, and a daemonic worker computes alone."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np

from data_prep.forked import MIN_ROWS_PER_WORKER, map_rows


def _rows_with_pids(start: int, stop: int) -> np.ndarray:
    """Each row's own index beside the process that computed it."""
    return np.stack([np.arange(start, stop), np.full(stop - start, os.getpid())], axis=1)


def test_rows_are_computed_in_forked_processes_and_come_back_in_order():
    count = 2 * MIN_ROWS_PER_WORKER + 7
    out = map_rows(_rows_with_pids, count, workers=2)
    assert np.array_equal(out[:, 0], np.arange(count))
    pids = set(out[:, 1].tolist())
    assert os.getpid() not in pids and len(pids) == 2


def test_few_rows_or_one_worker_stay_in_this_process():
    for count, workers in ((MIN_ROWS_PER_WORKER, 2), (3 * MIN_ROWS_PER_WORKER, 1)):
        out = map_rows(_rows_with_pids, count, workers)
        assert np.array_equal(out[:, 0], np.arange(count)) and set(out[:, 1].tolist()) == {os.getpid()}


def _in_a_daemon(queue) -> None:
    out = map_rows(_rows_with_pids, 3 * MIN_ROWS_PER_WORKER, workers=2)  # a daemon may not start children
    queue.put(set(out[:, 1].tolist()) == {os.getpid()})


def test_a_daemonic_worker_computes_its_rows_itself():
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    worker = ctx.Process(target=_in_a_daemon, args=(queue,), daemon=True)
    worker.start()
    assert queue.get(timeout=60) is True
    worker.join()
