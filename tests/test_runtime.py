"""Process settings: the allocator tuning that keeps a step's temporaries out of fresh pages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sdfkit.runtime import (
    CPU_ACTIVATION_BYTES,
    MMAP_THRESHOLD_MAX,
    cpu_chunk_points,
    device_name,
    native_bf16_cpu,
    resolve_precision,
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


def _cpu_flags() -> set[str]:
    """The x86 feature flags /proc/cpuinfo lists (empty elsewhere)."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    return flags


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="no /proc/cpuinfo on this system")
def test_native_bf16_agrees_with_the_cpus_flags():
    assert native_bf16_cpu() == bool({"avx512_bf16", "amx_tile"} & _cpu_flags())


def test_auto_precision_is_bf16_only_on_a_cpu_with_bf16_instructions():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16_cpu() else "fp32")
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    for given in ("fp32", "tf32", "bf16"):
        assert resolve_precision(given, cpu) == resolve_precision(given, torch.device("cuda")) == given


def test_device_name_is_the_cpu_model():
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else []
    name = device_name(torch.device("cpu"))
    assert name and name != "cpu" and (not models or name == models[0])


def test_a_cloud_fit_refines_on_the_threads_torch_had(shared_meshes, tmp_path: Path):
    """A cloud's preparation searches nearest points with point-cloud-utils, which (torch imported first, as by
    a user's script or the CLI) left torch's OpenMP runtime at one thread: the refinement then used one core of
    two. The fit runs in a fresh process that imports torch first and asks for two threads."""
    import numpy as np

    from data_prep.mesh import load_mesh
    from data_prep.sampling import sample_surface

    points, _ = sample_surface(load_mesh(shared_meshes / "val" / "torus.obj"), 5000, np.random.default_rng(2))
    np.savetxt(tmp_path / "scan.xyz", points)
    out = tmp_path / "fit"
    argv = ["sdfkit", "fit", str(tmp_path / "scan.xyz"), "--out", str(out), "--steps", "2", "--resolution", "32",
            "--no-preview", "--quiet"]
    script = f"import sys, torch\ntorch.set_num_threads(2)\nfrom sdfkit.cli import main\nsys.argv = {argv!r}\nmain()\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "report.json").read_text())["threads"] == 2


def test_a_clouds_preparation_and_its_distances_keep_torchs_threads(shared_meshes, tmp_path: Path):
    """:func:`sdfkit.samples.prepare_cloud` and the distance function it returns (the encoder's input) each search
    nearest points; 200,000 queries are above the size at which the search took torch's threads."""
    import numpy as np

    from data_prep.mesh import load_mesh
    from data_prep.sampling import sample_surface

    points, _ = sample_surface(load_mesh(shared_meshes / "val" / "torus.obj"), 5000, np.random.default_rng(2))
    np.savetxt(tmp_path / "scan.xyz", points)
    script = textwrap.dedent(
        f"""
        import numpy as np, torch
        torch.set_num_threads(2)
        from data_prep.sampling import SamplingConfig
        from sdfkit.samples import prepare_cloud
        _, _, _, _, sdf = prepare_cloud({str(tmp_path / "scan.xyz")!r}, SamplingConfig(num_points=20_000))
        print(torch.get_num_threads())
        sdf(np.random.default_rng(0).uniform(-1, 1, (200_000, 3)))
        print(torch.get_num_threads())
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["2", "2"]
