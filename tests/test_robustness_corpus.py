"""Every defective input of ``tests/corpus.py`` through prep, fit, mesh --exact, eval and view's loading step.

Commands run in-process through :func:`sdfkit.cli.main` (the console entry, with its error handling), so a
traceback would surface here as an uncaught exception; ``test_robustness_faults.py`` and the other CLI tests run
the same entry in subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from corpus import (
    CASES,
    COMMANDS,
    MIN_EVAL_IOU,
    MIN_FIT_IOU,
    MIN_MESH_IOU,
    MIN_SIGN_AGREEMENT,
    SIGN_MARGIN,
    Case,
    _write_obj_raw,
    assert_one_line_error,
    run_cli,
)

#: Samples and lattice sizes that keep each call to a second or so.
PREP_POINTS = "4000"
MESH_RESOLUTION = "32"
EVAL_SURFACE, EVAL_VOLUME = "2000", "20000"
#: The extracted mesh's bounding box must match the intended solid's within this fraction of its size
#: (in the input's own units: checks the way back from the unit frame).
BOUNDS_TOLERANCE = 0.06


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]


def sign_agreement(values: np.ndarray, points_unit: np.ndarray, reference_unit: trimesh.Trimesh) -> float:
    """Fraction of points farther than SIGN_MARGIN from the reference surface where ``values`` has its sign."""
    from data_prep.sdf import signed_distance

    truth = signed_distance(reference_unit.vertices, reference_unit.faces, points_unit)
    far = np.abs(truth) > SIGN_MARGIN
    assert far.sum() > 0.5 * len(points_unit)
    return float(np.mean(np.sign(values[far]) == np.sign(truth[far])))


def reference_in_frame(case: Case, norm) -> trimesh.Trimesh:
    ref = case.reference()
    return trimesh.Trimesh(norm.to_unit(ref.vertices), ref.faces, process=False)


def _params():
    for case in CASES:
        for command in COMMANDS:
            marks = []
            # Fitting takes tens of seconds per mesh on these CPUs: the working fits run with -m slow; the
            # refusals are instant and run by default.
            if case.slow or (command == "fit" and case.outcomes[command].ok):
                marks.append(pytest.mark.slow)
            yield pytest.param(case, command, id=f"{case.name}-{command}", marks=marks)


@pytest.mark.parametrize("case,command", list(_params()))
def test_case(case: Case, command: str, tmp_path: Path):
    reason = case.skip()
    if reason:
        pytest.skip(reason)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path = case.build(inputs)
    outcome = case.outcomes[command]
    work = tmp_path / "work"
    work.mkdir()
    if command == "view":
        _check_view(case, path, outcome)
        return
    if command == "prep":
        out = work / "samples"
        code, _, err = run_cli("prep", str(path), "--out", str(out), "--points", PREP_POINTS, "--workers", "1", "--quiet")
        if not outcome.ok:
            assert_one_line_error(code, err, outcome.detail)
            assert not out.exists() or not files_under(out)
            return
        assert code == 0, err
        from data_prep.sampling import SdfSamples

        samples = SdfSamples.load(out / f"{path.stem}.npz")
        ref = reference_in_frame(case, samples.normalization)
        assert sign_agreement(samples.sdf, samples.points, ref) >= MIN_SIGN_AGREEMENT
        return
    if command == "fit":
        out = work / "fit"
        code, _, err = run_cli("fit", str(path), "--out", str(out), "--steps", "20", "--resolution", "48",
                               "--no-preview", "--quiet", *case.fit_args)
        if not outcome.ok:
            assert_one_line_error(code, err, outcome.detail)
            assert not out.exists()
            assert not [p.name for p in work.iterdir()], "a temporary folder or lock was left behind"
            return
        assert code == 0, err
        report = json.loads((out / "report.json").read_text())
        result = trimesh.load(out / "mesh.obj", force="mesh")
        if "iou" in report["metrics"]:
            assert report["metrics"]["iou"] >= MIN_FIT_IOU
        else:  # a point cloud's report scores the fit against its points; the solid is checked here
            from sdfkit.metrics import volumetric_iou

            assert volumetric_iou(result, case.reference(), int(EVAL_VOLUME)) >= MIN_FIT_IOU
        _check_bounds(result, case)
        return
    if command == "mesh":
        out = work / "out.ply"
        code, _, err = run_cli("mesh", "--exact", str(path), str(out), "--resolution", MESH_RESOLUTION)
        if not outcome.ok:
            assert_one_line_error(code, err, outcome.detail)
            assert not files_under(work)
            return
        assert code == 0, err
        from sdfkit.metrics import volumetric_iou

        result = trimesh.load(out, force="mesh")
        _check_bounds(result, case)
        assert volumetric_iou(result, case.reference(), int(EVAL_VOLUME)) >= MIN_MESH_IOU
        return
    if command == "eval":
        out = work / "metrics.json"
        ref = case.reference() if case.reference else trimesh.creation.icosphere(2)
        ref_path = _write_obj_raw(ref.vertices, ref.faces, tmp_path, "reference.obj")
        code, _, err = run_cli("eval", str(path), str(ref_path), "--json", str(out),
                               "--surface-points", EVAL_SURFACE, "--volume-points", EVAL_VOLUME)
        if not outcome.ok:
            assert_one_line_error(code, err, outcome.detail)
            assert not files_under(work)
            return
        assert code == 0, err
        metrics = json.loads(out.read_text())
        assert metrics["iou"] >= MIN_EVAL_IOU
        return
    raise AssertionError(f"unknown command {command}")


def _check_bounds(result: trimesh.Trimesh, case: Case) -> None:
    expected = np.asarray(case.reference().bounds)
    size = float((expected[1] - expected[0]).max())
    np.testing.assert_allclose(result.bounds, expected, atol=BOUNDS_TOLERANCE * size)


def _check_view(case: Case, path: Path, outcome) -> None:
    from sdfkit.errors import SdfkitError
    from viewer.sources import load_source

    if not outcome.ok:
        with pytest.raises(SdfkitError) as info:
            load_source(path, exact=True)
        message = str(info.value)
        assert "\n" not in message and outcome.detail in message
        return
    from data_prep.mesh import load_mesh, normalize_mesh

    source = load_source(path, exact=True)
    lo, hi = (np.asarray(b, dtype=np.float64) for b in source.bounds)
    assert np.all(np.isfinite(lo)) and np.all(hi > lo)
    points = np.random.default_rng(0).uniform(lo, hi, size=(4000, 3)).astype(np.float32)
    values = np.asarray(source.field(points))
    assert values.shape == (4000,) and values.dtype == np.float32
    _, norm = normalize_mesh(load_mesh(path))
    assert sign_agreement(values, points, reference_in_frame(case, norm)) >= MIN_SIGN_AGREEMENT
