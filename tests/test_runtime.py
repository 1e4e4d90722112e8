"""Process settings: the allocator tuning that keeps a step's temporaries out of fresh pages."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sdfkit.runtime import tune_allocator

STEP_FAULTS = textwrap.dedent(
    """
    import resource, sys, torch
    if sys.argv[1] == "tuned":
        from sdfkit.runtime import tune_allocator
        assert tune_allocator()
    from sdfkit.models.siren import ModulatedSiren
    torch.manual_seed(0)
    decoder = ModulatedSiren(hidden=64, layers=4, latent_dim=64).requires_grad_(False)
    codes = torch.zeros(2000, 64, requires_grad=True)
    x, index = torch.rand(30000, 3), torch.randint(2000, (30000,))
    def step():
        decoder.synthesis(x, decoder.amplitudes(codes), index).sum().backward()
    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        step()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3)
    """
)


def step_page_faults(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", STEP_FAULTS, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_allocator_reuses_step_temporaries():
    assert tune_allocator() is True
    assert tune_allocator() is True  # idempotent
    default, tuned = step_page_faults("default"), step_page_faults("tuned")
    assert tuned < 0.5 * default, (tuned, default)
