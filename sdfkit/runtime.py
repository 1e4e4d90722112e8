"""Where and how computation runs: the device, and process-wide settings that make the CPU path fast.

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
import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

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


@contextmanager
def torch_threads_kept(within: int | None = None) -> Iterator[None]:
    """Give torch back its intra-op thread count when the block ends; ``within``: the count inside the block.

    point-cloud-utils links its own OpenMP runtime, but where torch was imported first its calls resolve to
    torch's: after a large nearest-neighbour search torch ran on one thread, so a cloud's fit used one core of
    two. Wrap calls into such libraries whose caller goes on with torch.
    """
    import torch

    threads = torch.get_num_threads()
    if within is not None:
        torch.set_num_threads(max(1, within))
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


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


@functools.cache
def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX tiles), with which torch's bf16
    matrix products run faster than float32's; without them they are emulated and slower."""
    import torch

    # Private probes of torch.cpu: a torch without them is taken to lack the instructions.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_precision(precision: str, device: torch.device) -> str:
    """A step's precision for ``device``: ``auto`` is bf16 on a CPU with :func:`native_bf16_cpu`, else fp32
    (GPUs included); any other value is returned as given."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and native_bf16_cpu() else "fp32"


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
