"""The per-shape reference without an auto-decoder: a plain SIREN fitted to one shape alone.

SIREN's own SDF loss (Sitzmann et al. 2020): on-surface value, normal
alignment, Eikonal and off-surface terms. Only the baselines benchmark
(``benchmarks/run.py``) uses it, so it lives beside it rather than in the library.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor, nn

from data_prep.errors import SdfkitError
from sdfkit.models.baselines import SirenConcatDecoder, count_parameters

#: SIREN's SDF loss weights (Sitzmann et al. 2020, their released ``sdf`` loss).
SIREN_LOSS_WEIGHTS = {"surface": 3e3, "off_surface": 1e2, "normal": 1e2, "eikonal": 5e1}
#: Decay of the off-surface term ``exp(-alpha |f|)``.
OFF_SURFACE_ALPHA = 100.0


def siren_sdf_loss(model: SirenConcatDecoder, surface: Tensor, normals: Tensor, off: Tensor) -> tuple[Tensor, dict]:
    """SIREN's SDF loss of a code-less SIREN on one batch.

    surface, normals : (m, 3) on-surface points and unit normals; off : (k, 3)
    points anywhere. Terms: |f| on the surface, 1 - cos(grad f, n) on the
    surface, | |grad f| - 1 | everywhere, exp(-alpha |f|) off the surface.
    Returns (weighted sum, the four unweighted terms as floats).
    """
    x = torch.cat([surface, off]).requires_grad_(True)
    f = model.mlp(x)
    grad = torch.autograd.grad(f.sum(), x, create_graph=True)[0]
    m = len(surface)
    terms = {
        "surface": f[:m].abs().mean(),
        "normal": (1.0 - nn.functional.cosine_similarity(grad[:m], normals, dim=-1)).mean(),
        "eikonal": (grad.norm(dim=-1) - 1.0).abs().mean(),
        "off_surface": torch.exp(-OFF_SURFACE_ALPHA * f[m:].abs()).mean(),
    }
    total = sum(SIREN_LOSS_WEIGHTS[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}


class SirenField:
    """A code-less SIREN as a field: (N, 3) float32 unit-frame points -> (N,) float32 signed distances (negative inside)."""

    def __init__(self, model: SirenConcatDecoder, chunk: int = 1 << 15):
        self.model, self.chunk = model.eval(), chunk

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        out = np.empty(len(points), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(points), self.chunk):
                out[start : start + self.chunk] = self.model.mlp(torch.from_numpy(points[start : start + self.chunk])).numpy()
        return out


def fit_siren_reference(
    samples,
    hidden: int = 64,
    layers: int = 3,
    w0: float = 30.0,
    steps: int = 1000,
    batch_points: int = 8192,
    lr: float = 1e-4,
    max_seconds: float | None = None,
    seed: int = 0,
) -> tuple[SirenField, dict]:
    """Fit a plain SIREN to one shape alone (no auto-decoder) with :func:`siren_sdf_loss`.

    samples : :class:`data_prep.sampling.SdfSamples`; its ``surface_points`` and
    ``surface_normals`` feed the on-surface terms and its ``points`` the
    off-surface and Eikonal terms (half of ``batch_points`` each). Stops after
    ``steps`` or ``max_seconds``. Returns (field, info with steps, seconds, parameters, last terms).
    """
    torch.manual_seed(seed)
    model = SirenConcatDecoder(3, hidden, layers, latent_dim=0, w0=w0)
    surface = torch.from_numpy(np.asarray(samples.surface_points, dtype=np.float32))
    normals = nn.functional.normalize(torch.from_numpy(np.asarray(samples.surface_normals, dtype=np.float32)), dim=-1)
    off = torch.from_numpy(np.asarray(samples.points, dtype=np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    half = max(batch_points // 2, 1)
    t0, step, terms = time.perf_counter(), 0, {}
    for step in range(1, steps + 1):  # noqa: B007  (the last step is reported)
        on = torch.randint(len(surface), (half,), generator=gen)
        anywhere = torch.randint(len(off), (half,), generator=gen)
        loss, terms = siren_sdf_loss(model, surface[on], normals[on], off[anywhere])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
            break
    if not all(np.isfinite(v) for v in terms.values()):
        raise SdfkitError("the SIREN reference diverged (non-finite loss); try a lower learning rate")
    info = {"steps": step, "seconds": time.perf_counter() - t0, "parameters": count_parameters(model), "terms": terms}
    return SirenField(model), info
