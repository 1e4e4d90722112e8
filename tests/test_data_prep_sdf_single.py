"""A lone query point gets the same exact distance as it does among others."""

import numpy as np
import trimesh

from data_prep.sdf import MeshSDF, closest_faces


def test_single_point_queries_match_batched_ones():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    points = np.array([[0.0, 0.0, 0.0], [0.9, 0.1, -0.2], [0.1, 0.2, 0.3]])
    batched, faces = closest_faces(sphere.vertices, sphere.faces, points)
    for i, p in enumerate(points):
        d, f = closest_faces(sphere.vertices, sphere.faces, p[None])
        assert abs(d[0] - batched[i]) < 1e-12 and f[0] == faces[i]
    assert abs(MeshSDF(sphere)(np.zeros((1, 3), np.float32))[0] + 0.5) < 0.01
