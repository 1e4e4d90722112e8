"""Results files (benchmarks.common): provenance recorded, earlier results never overwritten."""

from __future__ import annotations

import json
import re

import benchmarks.common as common


def test_results_record_their_provenance_and_are_added_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "_stems", {})
    first = common.write_result("bench", {"value": 1.5}, tmp_path)
    table = common.write_result_text("bench", ".md", "| 1.5 |\n", tmp_path)
    assert (first.name, table.name) == ("bench.json", "bench.md")
    data = json.loads(first.read_text())
    assert list(data)[:6] == ["command", "commit", "machine", "load_before", "load_after", "date"]
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", data["commit"]) and data["value"] == 1.5
    assert data["machine"] == common.machine() and isinstance(data["load_after"], float)
    # The same run saves again into its own file; a later run adds files beside the first.
    assert common.write_result("bench", {"value": 1.6}, tmp_path) == first
    for run in (2, 3):
        monkeypatch.setattr(common, "_stems", {})
        again = common.write_result("bench", {"value": float(run)}, tmp_path)
        assert again != first and common.write_result_text("bench", ".md", "x", tmp_path).stem == again.stem
    assert json.loads(first.read_text())["value"] == 1.6
    assert sorted(json.loads(p.read_text())["value"] for p in tmp_path.glob("bench*.json")) == [1.6, 2.0, 3.0]


def test_the_recorded_command_can_be_run_again_as_written(monkeypatch):
    import shlex

    argv = ["benchmarks/chamfer_where.py", "--pair", "1% noise, seed 0", "gt.obj", "fit dir/mesh.obj"]
    monkeypatch.setattr(common.sys, "argv", argv)
    recorded = common.command()
    assert recorded.startswith("python -m benchmarks.chamfer_where ")
    assert shlex.split(recorded)[3:] == argv[1:]  # labels and paths with spaces stay one argument each


def test_a_table_is_written_with_its_provenance_beside_its_json(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "_stems", {})
    text = common.write_table("table", "A title", "A note.", ["a", "b"], [[1, "x"], [2.5, "y"]], {"rows": [1, 2]},
                              tmp_path)
    assert (tmp_path / "table.md").read_text() == text
    lines = text.splitlines()
    assert lines[0] == "# A title" and lines[2].startswith("Machine: ") and lines[2].endswith("after. A note.")
    assert f"commit {json.loads((tmp_path / 'table.json').read_text())['commit']};" in lines[2]
    assert lines[4:] == ["| a | b |", "|---|---|", "| 1 | x |", "| 2.5 | y |"]
    assert json.loads((tmp_path / "table.json").read_text())["rows"] == [1, 2]
