"""Compose several meshes into one scene, laid out on a grid (the large-scene setting).

Each mesh is centred, scaled to a bounding-box diagonal of ``size``, and placed
on a square grid in the x-z plane, ``spacing`` apart, row by row: the layout
of Mehta et al. 2021's large-scene experiment.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import numpy as np
import trimesh

from data_prep.mesh import load_mesh


def compose_scene(paths: list[str | Path], spacing: float = 1.0, size: float = 1.0,
                  columns: int | None = None) -> trimesh.Trimesh:
    """One mesh holding every mesh of ``paths`` on a grid."""
    columns = columns or math.ceil(math.sqrt(len(paths)))
    parts = []
    for i, path in enumerate(paths):
        mesh = load_mesh(path)
        lo, hi = mesh.bounds
        vertices = (np.asarray(mesh.vertices) - (lo + hi) / 2.0) * (size / float(np.linalg.norm(hi - lo)))
        row, col = divmod(i, columns)
        vertices = vertices + np.array([col * spacing, 0.0, row * spacing])
        parts.append(trimesh.Trimesh(vertices, mesh.faces, process=False))
    return cast(trimesh.Trimesh, trimesh.util.concatenate(parts))  # a list of meshes concatenates to a mesh
