# The README's Python API example, run from the repository root: python benchmarks/readme_api_example.py
import numpy as np

import sdfkit

sdf = sdfkit.fit_mesh("../shared/meshes/val/sphere.obj", "runs/sphere_api", steps=100, resolution=64, force=True)
points = np.array([[0.0, 0.0, 0.98], [0.0, 0.0, 1.03]])       # in the mesh's own units
d, g = sdf.distance_and_gradient(points)                         # (2,) distances, (2, 3) gradients
print("distance", d.round(3), "gradient", g.round(2).tolist())
print("IoU", round(sdf.report["metrics"]["iou"], 4), "mesh faces", len(sdf.mesh(resolution=64).faces))
