"""The prep manifest: its sign-consistency figures against slow references, and the rejection rule on real soup."""

from __future__ import annotations

import json
import shutil

import numpy as np
import trimesh

from data_prep.dataset import prep_dataset, read_split
from data_prep.manifest import sign_conflicts, winding_ambiguity
from data_prep.sampling import SamplingConfig


def test_sign_conflicts_against_a_plain_loop(rng):
    points = rng.uniform(-1, 1, (400, 3))
    sdf = np.linalg.norm(points, axis=1) - 0.5  # a sphere: exact, so no conflicts
    assert sign_conflicts(points, sdf) == 0.0
    flipped = sdf.copy()
    flipped[:40] *= -1  # wrong signs
    expected = 0
    for i, p in enumerate(points):
        gaps = np.linalg.norm(points - p, axis=1)
        gaps[i] = np.inf
        j = int(np.argmin(gaps))
        if flipped[i] * flipped[j] < 0 and abs(flipped[i]) + abs(flipped[j]) > gaps[j] + 1e-5:
            expected += 1
    assert expected > 0
    assert sign_conflicts(points, flipped) == expected / len(points)


def test_winding_ambiguity_is_zero_for_a_closed_mesh_and_not_for_an_open_sheet(rng):
    points = rng.uniform(-1, 1, (4000, 3))
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.6)
    assert winding_ambiguity(sphere.vertices, sphere.faces, points) == 0.0
    upper = sphere.faces[(sphere.vertices[sphere.faces][:, :, 2] >= 0).all(axis=1)]
    half = trimesh.Trimesh(sphere.vertices, upper)  # open hemisphere: |w| near 1/2 around its rim
    assert winding_ambiguity(half.vertices, half.faces, points) > 0.05


def test_rejection_rule_on_real_chairs(shared_meshes, tmp_path):
    folder = tmp_path / "chairs"
    folder.mkdir()
    for name in ("blendswap_ccby_armchair2.ply", "scopia_chair3.ply"):  # open-sheet soup, and a clean model
        shutil.copy(shared_meshes / "chairs" / "val" / name, folder / name)
    out = tmp_path / "samples"
    summary = prep_dataset(folder, out, SamplingConfig(num_points=20_000, num_surface=2_000), workers=1,
                           progress=False)
    assert summary.written == ["blendswap_ccby_armchair2.npz", "scopia_chair3.npz"]
    assert list(summary.rejected) == ["blendswap_ccby_armchair2.npz"]
    doc = json.loads((out / "manifest.json").read_text())
    rows = {r["shape"]: r for r in doc["meshes"]}
    bad, good = rows["blendswap_ccby_armchair2.npz"], rows["scopia_chair3.npz"]
    assert bad["rejected"] and "ambiguous winding number" in bad["reason"] and bad["winding_ambiguous"] > 0.2
    assert not good["rejected"] and good["winding_ambiguous"] < 0.01 and good["sign_conflicts"] < 0.001
    assert (bad["parts"], good["parts"]) == (40, 8) and good["objects"] == 1 and not good["watertight"]
    assert good["sign_method"] == "exact" and good["scale"] > 0
    assert read_split(out / "split.json") == {"chairs": {".": ["scopia_chair3"]}}
    header = (out / "manifest.csv").read_text().splitlines()[0]
    assert header.startswith("shape,mesh,faces,vertices,parts,objects,watertight,center,scale,sign_method")
    again = prep_dataset(folder, out, SamplingConfig(num_points=20_000, num_surface=2_000), workers=1, progress=False)
    assert again.skipped == summary.written and again.rejected == summary.rejected  # resumed, same verdict
