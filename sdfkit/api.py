"""The Python API: fit meshes, load a fitted result, query its signed distance and gradient, extract a mesh.

(``sdfkit.fit`` and ``sdfkit.extract`` are modules, hence ``fit_mesh`` and ``SignedDistance.mesh``.)
Everything here works in the **input's own units** (the units of the mesh that
was fitted); signed distances are negative inside.

    import sdfkit
    sdf = sdfkit.fit_mesh("bunny.obj", "runs/bunny", steps=200)   # or sdfkit.load("runs/bunny")
    d = sdf.distance(points)               # (n,) signed distances, points (n, 3) in the mesh's units
    d, g = sdf.distance_and_gradient(points)
    mesh = sdf.mesh(resolution=128)        # trimesh.Trimesh in the mesh's units
    rows, stats = sdfkit.fit_folder("meshes/", "runs/meshes", steps=200)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import trimesh

from sdfkit.batch import fit_folder as _fit_folder
from sdfkit.errors import SdfkitError
from sdfkit.extract import extract_mesh
from sdfkit.fit import FitRequest
from sdfkit.fit import fit_mesh as _fit_mesh
from sdfkit.fit_output import FittedScene, load_fitted
from sdfkit.models.latent_grid import blend_tiles

#: Points per autograd pass of :meth:`SignedDistance.distance_and_gradient`; bounds memory.
GRADIENT_CHUNK = 65_536


def _points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise SdfkitError(f"points must be an (n, 3) array, got shape {p.shape}")
    return p


class SignedDistance:
    """A fitted signed distance field, queried in the fitted mesh's own units (negative inside).

    Outside the latent grid's box (the mesh's bounding box plus a cell) the
    field is the clamp distance, a positive constant, and its gradient is zero.
    """

    def __init__(self, scene: FittedScene):
        self.scene = scene
        self.field = scene.field
        self.normalization = scene.normalization

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(3,), (3,): the box where the field is defined, in the input's units."""
        lo, hi = self.scene.bounds
        return self.normalization.from_unit(lo[None])[0], self.normalization.from_unit(hi[None])[0]

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) points in the input's units -> (n,) float64 signed distances in the input's units."""
        points = _points(points)
        unit = self.normalization.to_unit(points).astype(np.float32)
        return self.field(unit).astype(np.float64) * self.normalization.scale

    def distance_and_gradient(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) points -> (n,) signed distances and (n, 3) their gradients (unitless, about unit length
        near the surface), both in the input's frame."""
        points = _points(points)
        unit = self.normalization.to_unit(points).astype(np.float32)
        grid, decoder, band = self.field.grid, self.field.decoder, self.field.band
        dist, grad = np.empty(len(unit)), np.empty((len(unit), 3))
        for start in range(0, len(unit), GRADIENT_CHUNK):
            x = torch.from_numpy(unit[start:start + GRADIENT_CHUNK]).to(self.field.device).requires_grad_(True)
            with torch.enable_grad():
                code, local, weight, side = grid.corners(x)
                cells = blend_tiles(decoder, code, local, weight, side, band, codes=grid.codes.detach())
                cells = torch.where(grid.inside_box(x), cells, torch.full_like(cells, band))
                value = cells * grid.spec.cell
                (g,) = torch.autograd.grad(value.sum(), x)
            dist[start:start + len(x)] = value.detach().cpu().numpy()
            grad[start:start + len(x)] = g.cpu().numpy()
        # d_input = d_unit * scale and x_unit = x_input / scale + c: the gradient is unchanged by the similarity.
        return dist * self.normalization.scale, grad

    def mesh(self, resolution: int = 256, level: float = 0.0, keep_unsupported: bool = False) -> trimesh.Trimesh:
        """Marching cubes of the field at ``level`` (input units) over its box: a mesh in the input's units.

        Like ``sdfkit fit``, it drops the parts that lie wholly away from the fitted input unless
        ``keep_unsupported`` (:meth:`sdfkit.fit_output.FittedScene.drop_unsupported`)."""
        lo, hi = self.scene.bounds
        mesh = extract_mesh(self.field, resolution=resolution, level=level / self.normalization.scale,
                            bounds=(lo, hi), normalization=self.normalization)
        return mesh if keep_unsupported else self.scene.drop_unsupported(mesh, resolution, level)[0]

    @property
    def report(self) -> dict:
        """The fit's report.json (metrics, steps, seconds), empty when the folder has none."""
        return self.scene.report


def load(path: str | Path, device: str = "cpu") -> SignedDistance:
    """A fit output folder (or its ``latents.pt``) written by ``sdfkit fit`` or :func:`fit`."""
    return SignedDistance(load_fitted(path, device))


def _options(options: dict) -> FitRequest:
    names = {f.name for f in dataclasses.fields(FitRequest)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise SdfkitError(f"unknown fit option '{unknown[0]}' (known: {', '.join(sorted(names))})")
    return FitRequest(**{"preview": False, **options})


def fit_mesh(mesh: str | Path, out: str | Path, progress: bool = False, **options) -> SignedDistance:
    """Fit ``mesh`` with the shipped (or ``decoder=``) decoder into ``out``; returns the fitted field.

    options : any :class:`sdfkit.fit.FitRequest` field (``steps``, ``max_seconds``, ``resolution``,
    ``grid_resolution``, ``decoder``, ``device``, ``force``, ``preview`` (default False here), ...).
    """
    opts = _options(options)
    _fit_mesh(mesh, out, opts, progress=progress)
    return load(out, device=opts.device if opts.device != "auto" else "cpu")


def fit_folder(source: str | Path, out: str | Path, progress: bool = False, **options) -> tuple[list[dict], dict]:
    """Fit every mesh a folder, glob pattern, prep output or split file names; resumable.

    Returns (rows, statistics) as in ``out/summary.csv`` and ``out/summary.md``; load one mesh's
    result with ``load(out / name)``.
    """
    return _fit_folder(source, out, _options(options), progress=progress)
