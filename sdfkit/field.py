"""A fitted scene as a field: the ``(N, 3) -> (N,)`` signed distance callable.

Extraction, metrics and the viewer consume fields; signed distances are in the
unit frame and negative inside.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sdfkit.models.latent_grid import LatentGrid, blend_tiles
from sdfkit.models.siren import ModulatedSiren
from sdfkit.runtime import cpu_chunk_points


class NeuralField:
    """A fitted scene as a signed distance callable.

    ``field(points)`` maps (N, 3) float32 unit-frame points to (N,) float32
    signed distances in the unit frame (negative inside). Points outside the
    grid's box are outside the shape and get the clamp distance. Evaluation is
    batched (``chunk`` points at a time) under ``torch.inference_mode``, on the
    device the decoder and grid live on.
    """

    def __init__(self, decoder: ModulatedSiren, grid: LatentGrid, band: float, chunk: int | None = None):
        self.decoder, self.grid, self.band = decoder.eval(), grid.eval(), float(band)
        self.device = grid.codes.device
        self.chunk = chunk or (1 << 18 if self.device.type == "cuda" else cpu_chunk_points(decoder.hidden))
        with torch.inference_mode():
            self.amps = decoder.amplitudes(grid.codes)
        lo, hi = grid.spec.bounds
        self.bounds = (lo.astype(np.float32), hi.astype(np.float32))
        self._table: np.ndarray | None = None

    def may_cross(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """(B,) bool: the box [lo, hi] (each (B, 3), unit frame) meets the region of an active tile.

        Elsewhere every point's 8 tiles lack a code, so the field there is a blend of their
        sides times the band: it has one sign and no surface (:data:`sdfkit.extract.Region`).
        """
        return self._active_counts(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)) > 0

    def _active_counts(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """(B,) the number of active tiles whose open region (vertex +- cell) meets each box, by a summed-volume
        table over the vertices (O(1) a box)."""
        spec = self.grid.spec
        if self._table is None:
            active = (self.grid.lookup >= 0).cpu().numpy().reshape(spec.vertex_shape).astype(np.int64)
            self._table = np.pad(active.cumsum(0).cumsum(1).cumsum(2), ((1, 0), (1, 0), (1, 0)))
        origin, shape = np.asarray(spec.origin), np.asarray(spec.vertex_shape)
        # Vertex i's region meets [lo, hi] when lo - cell < origin + i cell < hi + cell; the margin only adds tiles
        # that round-off might have dropped.
        margin = 1e-6
        first = np.clip(np.floor((lo - origin) / spec.cell - 1.0 - margin).astype(np.int64) + 1, 0, shape)
        last = np.clip(np.ceil((hi - origin) / spec.cell + 1.0 + margin).astype(np.int64), 0, shape)
        t = self._table
        (x0, y0, z0), (x1, y1, z1) = first.T, last.T
        return (t[x1, y1, z1] - t[x0, y1, z1] - t[x1, y0, z1] - t[x1, y1, z0]
                + t[x0, y0, z1] + t[x0, y1, z0] + t[x1, y0, z0] - t[x0, y0, z0])

    @torch.inference_mode()
    def evaluate(self, points: Tensor) -> Tensor:
        """(N, 3) tensor on the field's device -> (N,) unit-frame signed distances."""
        code, local, weight, side = self.grid.corners(points)
        cells = blend_tiles(self.decoder, code, local, weight, side, self.band, amps=self.amps)
        outside = ~self.grid.inside_box(points)
        cells = torch.where(outside, torch.full_like(cells, self.band), cells)
        return cells * self.grid.spec.cell

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        out = np.empty(len(points), dtype=np.float32)
        for start in range(0, len(points), self.chunk):
            batch = torch.from_numpy(points[start : start + self.chunk]).to(self.device)
            out[start : start + len(batch)] = self.evaluate(batch).float().cpu().numpy()
        return out
