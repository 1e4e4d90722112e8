"""``data_prep.forked``: rows computed in forked processes come back in order, a daemonic worker computes alone, and a
call beside the caller returns its value or its error."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

from data_prep.errors import SdfkitError
from data_prep.forked import MIN_ROWS_PER_WORKER, Beside, map_rows


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


def test_beside_computes_in_a_child_while_the_caller_goes_on():
    data = list(range(100_000))  # inherited by the child, not sent to it

    def work() -> tuple[int, int]:
        return os.getpid(), sum(data)

    job = Beside(work)
    pid, total = job.result()
    assert pid != os.getpid() and total == sum(data)
    assert job.seconds >= 0.0 and job.waited >= 0.0
    assert job.result() == (pid, total)  # a second call returns the same value without waiting
    here = Beside(work, here=True)  # asked to stay: computed at once, in this process
    assert here.result() == (os.getpid(), total)


def test_beside_raises_the_childs_error_in_the_caller():
    def fail() -> None:
        raise SdfkitError("the mesh has no faces")

    with pytest.raises(SdfkitError, match="the mesh has no faces"):
        Beside(fail).result()


def test_beside_reports_a_child_that_died_or_sent_what_cannot_travel():
    with pytest.raises(SdfkitError, match="ended without its result"):
        Beside(lambda: os._exit(3)).result()
    with pytest.raises(SdfkitError, match="could not be sent back"):
        Beside(lambda: threading.Lock()).result()  # a lock cannot be pickled


def test_cancel_stops_a_running_child():
    job = Beside(lambda: time.sleep(600))
    job.cancel()
    assert job._process is not None and job._process.exitcode == -signal.SIGTERM  # stopped, not waited for
    with pytest.raises(SdfkitError, match="cancelled"):
        job.result()
