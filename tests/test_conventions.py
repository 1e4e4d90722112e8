"""DeepSDF's and OccNet's metric conventions on concentric spheres, where every figure is known in closed form."""

from __future__ import annotations

import json

import pytest
import trimesh
from typer.testing import CliRunner

from sdfkit.cli import app
from sdfkit.conventions import deepsdf_metrics, occnet_metrics

R_GT, R_PRED = 10.0, 10.5  # e.g. centimetres


def _sphere(radius: float, scale: float = 1.0) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=5, radius=radius * scale).apply_translation([3.0, -2.0, 1.0])


@pytest.mark.parametrize("units", [1.0, 10.0])
def test_deepsdf_chamfer_is_in_the_gts_own_units(units):
    cd = deepsdf_metrics(_sphere(R_PRED, units), _sphere(R_GT, units), num=20_000)["deepsdf_chamfer"]
    # every nearest-sample distance is at least the 0.5 gap, and barely more with 20k samples: sum of two means
    assert cd == pytest.approx(2 * (0.5 * units) ** 2, rel=0.1)


def test_occnet_metrics_in_the_unit_cube():
    m = occnet_metrics(_sphere(R_PRED), _sphere(R_GT), num=20_000, num_volume=50_000)
    gap = 0.5 / (2 * R_GT)  # the unit cube's edge is GT's box edge, 2 R
    assert m["occnet_chamfer_l1"] == pytest.approx(gap, rel=0.1)
    assert m["occnet_chamfer_l2"] == pytest.approx(gap**2, rel=0.2)  # mean, not sum, of the two directions
    assert m["occnet_fscore_1pct"] == 0.0  # every distance is 2.5% of the edge
    assert m["occnet_iou"] == pytest.approx((R_GT / R_PRED) ** 3, abs=0.01)
    assert m["occnet_normal_consistency"] > 0.99
    same = occnet_metrics(_sphere(R_GT), _sphere(R_GT), num_volume=10_000)  # OccNet's 100k surface samples
    assert same["occnet_fscore_1pct"] > 0.95 and same["occnet_iou"] == 1.0  # sample spacing is below 1% of the edge


def test_eval_cli_convention(tmp_path):
    a, b = tmp_path / "a.ply", tmp_path / "b.ply"
    _sphere(R_PRED).export(a)
    _sphere(R_GT).export(b)
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["eval", str(a), str(b), "--convention", "deepsdf", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert set(json.loads(out.read_text())) == {"deepsdf_chamfer"} and "DeepSDF" in result.output
    bad = CliRunner().invoke(app, ["eval", str(a), str(b), "--convention", "pifu"])
    assert bad.exit_code != 0 and "unknown --convention 'pifu'" in str(bad.exception)
