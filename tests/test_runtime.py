"""Process settings: the allocator tuning that keeps a step's temporaries out of fresh pages; work beside the main
process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from data_prep.errors import SdfkitError
from sdfkit.runtime import (
    CPU_ACTIVATION_BYTES,
    MMAP_THRESHOLD_MAX,
    Beside,
    cpu_chunk_points,
    device_name,
    tune_allocator,
)

BLOCK_BYTES, BLOCKS, ROUNDS = 4 << 20, 8, 4

# A fitting step in miniature: several multi-MiB temporaries live at once, then all freed. Without the
# tuning glibc trims the freed top of its heap after every round (it keeps at most twice the largest
# block), so each round faults its pages in again.
ROUND_FAULTS = textwrap.dedent(
    f"""
    import ctypes, resource
    from sdfkit.runtime import tune_allocator
    assert tune_allocator()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    def one_round():
        blocks = [libc.malloc({BLOCK_BYTES}) for _ in range({BLOCKS})]
        for block in blocks:
            ctypes.memset(block, 1, {BLOCK_BYTES})
        for block in blocks:
            libc.free(block)
    one_round()  # the heap grows once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range({ROUNDS}):
        one_round()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / {ROUNDS})
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_allocator_reuses_freed_blocks():
    assert tune_allocator() is True
    assert tune_allocator() is True  # idempotent
    out = subprocess.run([sys.executable, "-c", ROUND_FAULTS], capture_output=True, text=True, check=True)
    faults_per_round = float(out.stdout.strip().splitlines()[-1])
    pages_per_round = BLOCKS * BLOCK_BYTES / 4096
    # Untuned glibc faults every page in again here (8160 of 8192 on Debian's glibc 2.36).
    assert faults_per_round < 0.05 * pages_per_round, (faults_per_round, pages_per_round)


@pytest.mark.parametrize("hidden", [16, 64, 100, 128, 512, 1024, 2048, 4096, 16384])
def test_cpu_chunks_keep_activations_below_the_mmap_ceiling(hidden):
    points = cpu_chunk_points(hidden)
    activation = points * 8 * hidden * 4  # one (points x 8 tiles, hidden) float32 activation
    # Below the ceiling with room for the allocator's own header, at every width ...
    assert activation <= CPU_ACTIVATION_BYTES <= MMAP_THRESHOLD_MAX // 2
    # ... and no smaller than it needs to be: one more point would pass the 8 MiB budget.
    assert activation + 8 * hidden * 4 > CPU_ACTIVATION_BYTES
    assert cpu_chunk_points(64) == 4096  # the figure BENCHMARKS.md quotes


def test_device_name_is_the_cpu_model():
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else []
    name = device_name(torch.device("cpu"))
    assert name and name != "cpu" and (not models or name == models[0])


def test_beside_computes_in_a_child_while_the_caller_goes_on():
    data = list(range(100_000))  # inherited by the child, not sent to it

    def work() -> tuple[int, int]:
        return os.getpid(), sum(data)

    job = Beside(work)
    pid, total = job.result()
    assert pid != os.getpid() and total == sum(data)
    assert job.seconds >= 0.0 and job.waited >= 0.0
    assert job.result() == (pid, total)  # a second call returns the same value without waiting


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
