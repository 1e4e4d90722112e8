"""Progress in a log (plain lines) and in a terminal (rich bars), and in a real fit's stderr."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from sdfkit.progress import LOG_SECONDS, LOG_SECONDS_VARIABLE, Reporter, format_seconds, log_interval

STEP_LINE = re.compile(r"^train: step (\d+)/40 \((\d+)%\), loss [0-9.e-]+, elapsed \d+s, remaining ~\d+s$")


def run_loop(reporter: Reporter, steps: int = 40, pause: float = 0.01) -> None:
    with reporter:
        with reporter.stage("prepare"):
            time.sleep(0.12)
        stage = reporter.stage("train", total=steps)
        for step in range(1, steps + 1):
            time.sleep(pause)
            reporter.update(stage, completed=step, loss=float("nan") if step < 5 else 1.0 / step)
        stage.done()


def test_log_lines_name_stage_step_loss_elapsed_and_remaining():
    out = io.StringIO()
    run_loop(Reporter(stream=out, terminal=False, log_seconds=0.05))
    lines = out.getvalue().splitlines()
    running = [m for m in map(STEP_LINE.match, lines) if m]
    assert len(running) >= 3, lines  # a line every 0.05 s of a 0.4 s stage
    steps = [int(m[1]) for m in running]
    assert steps == sorted(steps) and 0 < steps[0] < steps[-1] < 40
    assert re.fullmatch(r"train: step 40/40, loss 0\.025, done in \d+s", lines[-1]), lines[-1]
    # A stage without a loss or a known length says what it knows: no 'nan', no '?'.
    prepare = [line for line in lines if line.startswith("prepare")]
    assert prepare and prepare[-1] == "prepare: done in 0s" and all("loss" not in p for p in prepare), prepare
    assert "nan" not in out.getvalue() and "?" not in out.getvalue()


def test_a_time_budget_drives_the_fraction_and_the_estimate():
    out = io.StringIO()
    with Reporter(stream=out, terminal=False, log_seconds=0.05) as reporter:
        stage = reporter.stage("fit", total=100_000, budget_s=0.4)
        for step in range(1, 31):
            time.sleep(0.01)
            stage.update(completed=step, loss=0.5)
        fraction, remaining = stage.fraction, stage.remaining
        stage.done()
    # 30 of 100,000 steps, but most of the 0.4 s budget spent: the budget sets the progress.
    assert 0.5 < fraction <= 1.0 and remaining is not None and remaining < 0.4
    assert re.search(r"fit: step \d+/100000, 0/0.4 s budget \(\d+%\)", out.getvalue()), out.getvalue()


def test_terminal_bars_show_no_nan_and_no_unknown_count():
    out = io.StringIO()
    run_loop(Reporter(stream=out, terminal=True), steps=10)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # the terminal's control codes
    assert "train" in text and "step 10/10" in text and "loss 0.1" in text
    assert "nan" not in text and "0/?" not in text and "?" not in text


def test_a_terminal_bar_follows_its_time_budget_between_updates():
    with Reporter(stream=io.StringIO(), terminal=True, log_seconds=0.2) as reporter:
        stage = reporter.stage("fit", total=100_000, budget_s=0.6)
        stage.update(completed=1, loss=0.5)  # then a long step: no update for most of the budget
        time.sleep(0.45)
        (task,) = reporter._bar.tasks
        assert task.percentage > 50, task.percentage
        stage.done()


def test_short_and_failed_stages_end_silently_in_a_log():
    out = io.StringIO()
    with Reporter(stream=out, terminal=False, log_seconds=0.05) as reporter:
        with reporter.stage("quick", total=3) as stage:  # over before its first log line: not worth one
            stage.update(completed=3)
        try:
            with reporter.stage("broken", total=3):
                time.sleep(0.12)
                raise ValueError("bad input")
        except ValueError:
            pass
    lines = out.getvalue().splitlines()
    assert not any(line.startswith("quick") for line in lines), lines
    broken = [line for line in lines if line.startswith("broken")]
    assert broken and not any("done" in line for line in broken), lines


def test_disabled_reporter_prints_nothing():
    out = io.StringIO()
    run_loop(Reporter(enabled=False, stream=out, terminal=False, log_seconds=0.01), steps=5)
    assert out.getvalue() == ""


def test_the_log_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(LOG_SECONDS_VARIABLE, "2.5")
    assert log_interval() == 2.5 and Reporter(terminal=False).log_seconds == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(LOG_SECONDS_VARIABLE, bad)
        assert log_interval() == LOG_SECONDS
    monkeypatch.delenv(LOG_SECONDS_VARIABLE)
    assert log_interval() == LOG_SECONDS


def test_format_seconds():
    assert [format_seconds(s) for s in (0.4, 59, 124, 3720)] == ["0s", "59s", "2m04s", "1h02m"]


def test_a_real_fit_reports_each_stage_in_its_log(tmp_path: Path):
    mesh = tmp_path / "box.obj"
    import trimesh

    trimesh.creation.box(extents=(1.0, 0.6, 0.4)).export(mesh)
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "fit", str(mesh), "--out", str(tmp_path / "fit"),
                           "--steps", "100000", "--max-seconds", "3", "--resolution", "32", "--grid-resolution", "8",
                           "--no-preview"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, LOG_SECONDS_VARIABLE: "1"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    # A line a second while the fit stage runs out its 3 s budget (long before its steps), then its closing line.
    fit = [line for line in lines if line.startswith("fit: ")]
    assert len(fit) >= 2 and all("s budget" in line for line in fit), proc.stderr
    assert re.fullmatch(r"fit: step \d+/100000, [0-3]/3 s budget \(\d+%\), (loss [0-9.e-]+, )?elapsed \d+s"
                        r"(, remaining ~\d+s)?", fit[0]), fit[0]
    assert re.fullmatch(r"fit: step \d+/100000, 3/3 s budget, loss [0-9.e-]+, done in \d+s", fit[-1]), fit
    assert all(re.match(r"(prepare|fit|extract|score|write): ", line) for line in lines), proc.stderr
    assert "nan" not in proc.stderr and "\x1b[" not in proc.stderr  # plain text in a log, no terminal codes
    assert proc.stdout.startswith("wrote ")


def test_a_real_training_run_logs_its_steps_and_loss(shared_meshes: Path, tmp_path: Path):
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "train", "configs/tiny.yaml", "--out", str(tmp_path / "run"),
                           "--steps", "60"], cwd=repo, capture_output=True, text=True, timeout=600,
                          env={**os.environ, LOG_SECONDS_VARIABLE: "0.5"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert all(line.startswith("train: ") for line in lines), proc.stderr
    assert re.fullmatch(r"train: step \d+/60 \(\d+%\), (loss [0-9.e-]+, )?elapsed \d+s(, remaining ~\d+s)?", lines[0])
    assert re.fullmatch(r"train: step 60/60, loss [0-9.e-]+, done in \d+s", lines[-1]), lines[-1]


def test_prep_logs_the_shapes_done(tmp_path: Path):
    import trimesh

    for i in range(3):
        trimesh.creation.icosphere(subdivisions=2, radius=0.5 + 0.1 * i).export(tmp_path / f"shape{i}.obj")
    proc = subprocess.run([sys.executable, "-m", "sdfkit", "prep", str(tmp_path), "--out", str(tmp_path / "samples"),
                           "--points", "2000", "--workers", "1"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, LOG_SECONDS_VARIABLE: "0.05"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("prep: shape ") for line in lines), proc.stderr
    assert re.fullmatch(r"prep: shape 3/3, done in \d+s, shape\d\.npz", lines[-1]), lines[-1]
