"""Where and how computation runs: the device, process-wide settings that make the CPU path fast, and work run
beside the main process (:class:`Beside`).

glibc's allocator hands every block above its mmap threshold (128 KiB at
start, adjusted up to 32 MiB) straight back to the kernel when freed. A
fitting step allocates and frees tens of (rows x 64) float32 temporaries of a
few MiB each, so every step then pays for fresh zeroed pages: on a 2-core
machine a third of a fit's time went to page faults in the kernel. Raising
the thresholds once keeps those blocks in the heap for reuse.

Blocks above 32 MiB are always mapped afresh, whatever the setting, so CPU
work is also cut into chunks whose activations stay well below that size
(:func:`cpu_chunk_points`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from data_prep.errors import SdfkitError

if TYPE_CHECKING:
    import torch

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: glibc's largest accepted mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
#: Free heap memory kept before returning it to the system.
TRIM_THRESHOLD = 1 << 30

#: Bytes of one (points x 8 tiles, hidden) float32 activation of a CPU chunk. A quarter of the mmap ceiling
#: keeps freed activations in the heap, and the working set of a layer near a CPU's last-level cache:
#: near-surface evaluation ran 1.4x as fast at 8 MiB as at 32 MiB on a 2-core EPYC (benchmarks/chunks.py).
CPU_ACTIVATION_BYTES = 8 << 20

_tuned: bool | None = None

T = TypeVar("T")


def cpu_chunk_points(hidden: int) -> int:
    """Points per CPU chunk of a tile-blended decoder ``hidden`` wide (each point reaches 8 tiles).

    At least one point; a chunk's (points x 8, hidden) float32 activation never exceeds ``CPU_ACTIVATION_BYTES``
    for widths up to ``CPU_ACTIVATION_BYTES / 32`` (262,144).
    """
    return max(1, CPU_ACTIVATION_BYTES // (8 * int(hidden) * 4))


def tune_allocator() -> bool:
    """Keep freed blocks of up to 32 MiB in glibc's heap instead of unmapping them. Idempotent.

    Returns whether the setting took (False on systems without glibc, where nothing changes).
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _tuned


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    import torch  # here: the CLI's entry point imports this module before any command needs torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SdfkitError(f"unknown device '{device}' (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SdfkitError("device 'cuda' requested but no CUDA GPU is available")
    return dev


def device_name(device: torch.device) -> str:
    """What a log records as the hardware: the GPU's name for CUDA, else the CPU model from ``/proc/cpuinfo``."""
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Beside(Generic[T]):
    """``fn()`` computed in a forked child process while the caller goes on; :meth:`result` waits for its value.

    The stages after a fit's extraction (scoring, writing, the preview) each run on one core; scoring is NumPy and
    point-cloud-utils work that holds the GIL, so a thread would not overlap it, but a forked child does. The child
    inherits ``fn``'s inputs as they are (nothing is pickled on the way in) and must not use torch: a forked child
    of a process whose OpenMP or CUDA runtime has started may hang in them. Its value, or the exception it raised,
    comes back pickled. Where the platform cannot fork, ``fn()`` runs at once, in this process.
    """

    def __init__(self, fn: Callable[[], T]):
        self.seconds = 0.0
        """How long ``fn()`` took (in the child)."""
        self.waited = 0.0
        """How long :meth:`result` waited for it."""
        self._outcome: tuple[bool, object, float] | None = None
        self._process = None
        if "fork" not in multiprocessing.get_all_start_methods():
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
