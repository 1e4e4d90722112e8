"""Progress of long stages (prep, train, fit, extraction), readable in a terminal and in a log.

One :class:`Reporter` shows every stage of a command. It writes to stderr, so
that stdout keeps only results:

- in a terminal, a rich bar per stage: the stage, its steps (``120/600``), the
  loss where the stage has one, elapsed and estimated remaining time; a stage
  of unknown length shows a spinner and its elapsed time instead of ``0/?``;
- anywhere else (a log file, CI, a job scheduler), one plain line per running
  stage every ``log_seconds`` (10 s, or ``$SDFKIT_PROGRESS_SECONDS``) and one when a stage that logged ends, e.g.
  ``fit: step 120/600 (20%), loss 0.01234, elapsed 31s, remaining ~2m04s``.

A stage with a time budget (``fit --max-seconds``) counts progress as the
larger of its steps and its budget spent, the same measure its learning rate
anneals over, so the bar and the estimate follow whichever ends the stage.

Library functions take ``progress: bool | Reporter``: ``True`` opens a
reporter of their own, a :class:`Reporter` adds their stage to the caller's
(one display for a whole command), ``False`` shows nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

#: Seconds between two log lines of a running stage when stderr is not a terminal; the environment variable
#: ``SDFKIT_PROGRESS_SECONDS`` overrides it. A stage that ends sooner without having logged a line ends silently:
#: a log is for what took time (and a command that fails on bad input keeps its one error line alone on stderr).
LOG_SECONDS = 10.0
LOG_SECONDS_VARIABLE = "SDFKIT_PROGRESS_SECONDS"


def format_seconds(seconds: float) -> str:
    """``45s``, ``2m04s`` or ``1h02m``: short enough for a log line."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Stage:
    """One stage's progress: steps done of ``total`` (None: unknown), an optional loss and time budget."""

    def __init__(self, reporter: Reporter | None, name: str, total: int | None = None, completed: int = 0,
                 unit: str = "step", budget_s: float | None = None, estimate: bool = True) -> None:
        self.reporter = reporter
        self.name = name
        self.total = total
        self.completed = completed
        self.unit = unit
        self.budget_s = budget_s
        self.estimate = estimate
        self.loss: float | None = None
        self.note = ""
        self.started = time.perf_counter()
        self.start_completed = completed
        self.finished: float | None = None
        self.task_id: Any = None  # the rich task, in a terminal

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def fraction(self) -> float | None:
        """Share of the stage done in [0, 1]: steps, or the time budget spent when that is further along."""
        parts = []
        if self.total:
            parts.append(self.completed / self.total)
        if self.budget_s:
            parts.append(self.elapsed / self.budget_s)
        return min(1.0, max(parts)) if parts else None

    @property
    def remaining(self) -> float | None:
        """Estimated seconds left, from the pace so far (None: unknown)."""
        if not self.estimate or self.finished is not None:
            return None
        fraction = self.fraction
        if fraction is None:
            return None
        if self.budget_s:
            done, start = fraction, 0.0
        else:  # steps resumed from a checkpoint took no time in this run
            done, start = fraction, self.start_completed / (self.total or 1)
        if done <= start or done >= 1.0:
            return None if done < 1.0 else 0.0
        return self.elapsed * (1.0 - done) / (done - start)

    def update(self, completed: int | None = None, advance: int = 0, loss: float | None = None,
               note: str | None = None, total: int | None = None) -> None:
        """Record progress; a NaN or missing loss means the stage has no loss (yet) and none is shown."""
        if total is not None:
            self.total = total
        if completed is not None:
            self.completed = completed
        self.completed += advance
        if loss is not None and math.isfinite(loss):
            self.loss = float(loss)
        if note is not None:
            self.note = note
        if self.reporter is not None:
            self.reporter._refresh(self)

    def done(self, failed: bool = False) -> None:
        """End the stage (its steps complete if its length was known); logs its closing line unless ``failed``."""
        if self.finished is not None:
            return
        if self.total is not None and not self.budget_s and not failed:
            self.completed = self.total
        self.finished = time.perf_counter()
        if self.reporter is not None:
            self.reporter._finish(self, failed)

    def count_text(self) -> str:
        """``step 120/600``, ``step 120`` or ``''``; a time budget adds ``12/15 s budget``."""
        if self.total is None and not self.completed:
            text = ""
        elif self.total is None:
            text = f"{self.unit} {self.completed}"
        else:
            text = f"{self.unit} {self.completed}/{self.total}"
        if self.budget_s:
            text += f", {min(self.elapsed, self.budget_s):.0f}/{self.budget_s:g} s budget"
        return text

    def line(self) -> str:
        """The stage as one plain log line."""
        parts = [self.count_text()]
        fraction = self.fraction
        if self.finished is None and fraction is not None:
            parts[0] += f" ({100 * fraction:.0f}%)"
        if self.loss is not None:
            parts.append(f"loss {self.loss:.5g}")
        if self.finished is not None:
            parts.append(f"done in {format_seconds(self.elapsed)}")
        else:
            parts.append(f"elapsed {format_seconds(self.elapsed)}")
            remaining = self.remaining
            if remaining is not None:
                parts.append(f"remaining ~{format_seconds(remaining)}")
        if self.note:
            parts.append(self.note)
        return f"{self.name}: " + ", ".join(p for p in parts if p)

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.done(failed=exc_type is not None)


class Reporter:
    """Shows the stages of one command on ``stream`` (stderr by default); see the module docstring.

    ``terminal`` forces the display (None: a rich bar when ``stream`` is a terminal, log lines otherwise).
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, terminal: bool | None = None,
                 log_seconds: float | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        if terminal is None:
            terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.terminal = terminal
        self.log_seconds = log_seconds if log_seconds is not None else log_interval()
        self.stages: list[Stage] = []
        self._bar = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_line: dict[int, float] = {}

    def __enter__(self) -> Reporter:
        if not self.enabled:
            return self
        if self.terminal:
            self._bar = _rich_progress(self.stream)
            self._bar.start()
        self._thread = threading.Thread(target=self._tick_loop, name="sdfkit-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def stage(self, name: str, total: int | None = None, completed: int = 0, unit: str = "step",
              budget_s: float | None = None, estimate: bool = True) -> Stage:
        """A new stage; end it with :meth:`Stage.done` (or use it as a context manager)."""
        stage = Stage(self if self.enabled else None, name, total, completed, unit, budget_s, estimate)
        if not self.enabled:
            return stage
        with self._lock:
            self.stages.append(stage)
            self._last_line[id(stage)] = stage.started
        if self._bar is not None:
            stage.task_id = self._bar.add_task(name, total=_bar_total(stage), completed=_bar_completed(stage),
                                               **_fields(stage))
        return stage

    def update(self, stage: Stage, **kwargs) -> None:
        """``stage.update(**kwargs)``: the call shape of a rich ``Progress``, so loops may take either."""
        stage.update(**kwargs)

    def _refresh(self, stage: Stage) -> None:
        if self._bar is not None and stage.task_id is not None:
            self._bar.update(stage.task_id, total=_bar_total(stage), completed=_bar_completed(stage), **_fields(stage))

    def _finish(self, stage: Stage, failed: bool) -> None:
        if self._bar is not None and stage.task_id is not None:
            if failed:
                self._bar.stop_task(stage.task_id)
                return
            total = _bar_total(stage) or 1
            self._bar.update(stage.task_id, total=total, completed=total, **_fields(stage))
        elif self._thread is not None and not failed:
            with self._lock:
                logged = self._last_line[id(stage)] > stage.started
            if logged or stage.elapsed >= self.log_seconds:
                self._write(stage.line())

    def _write(self, line: str) -> None:
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed pipe or log: progress is not worth failing for
                pass

    def _tick_loop(self) -> None:
        """Between a loop's updates: a terminal's bars follow the clock (a time budget, the time left); a log
        gets its lines."""
        tick = min(1.0, self.log_seconds / 4)
        while not self._stop.wait(tick):
            if self._bar is not None:
                with self._lock:
                    running = [s for s in self.stages if s.finished is None]
                for s in running:
                    self._refresh(s)
                continue
            now = time.perf_counter()
            with self._lock:
                due = [s for s in self.stages
                       if s.finished is None and now - self._last_line[id(s)] >= self.log_seconds]
                for s in due:
                    self._last_line[id(s)] = now
            for s in due:
                self._write(s.line())


ProgressArg = bool | Reporter


def log_interval() -> float:
    """Seconds between log lines: ``$SDFKIT_PROGRESS_SECONDS`` when a positive number, else :data:`LOG_SECONDS`."""
    try:
        value = float(os.environ.get(LOG_SECONDS_VARIABLE, LOG_SECONDS))
    except ValueError:
        return LOG_SECONDS
    return value if math.isfinite(value) and value > 0 else LOG_SECONDS


@contextlib.contextmanager
def stage_of(progress: ProgressArg, name: str, total: int | None = None, unit: str = "step",
             estimate: bool = True) -> Iterator[Stage]:
    """A stage on the caller's :class:`Reporter`, on a reporter of its own (``True``), or shown nowhere (``False``)."""
    if isinstance(progress, Reporter):
        with progress.stage(name, total, unit=unit, estimate=estimate) as stage:
            yield stage
        return
    with Reporter(enabled=bool(progress)) as reporter:
        with reporter.stage(name, total, unit=unit, estimate=estimate) as stage:
            yield stage


def _bar_total(stage: Stage) -> float | None:
    if stage.budget_s:
        return 1000.0  # the bar shows the larger of steps and budget, in thousandths
    return stage.total


def _bar_completed(stage: Stage) -> int:
    if stage.budget_s:
        return round(1000 * (stage.fraction or 0.0))
    return stage.completed


def _fields(stage: Stage) -> dict:
    remaining = stage.remaining
    parts = [stage.count_text(), f"loss {stage.loss:.4g}" if stage.loss is not None else "",
             f"~{format_seconds(remaining)} left" if remaining is not None else "", stage.note]
    return {"info": "  ".join(p for p in parts if p)}


def _rich_progress(stream: TextIO):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column

    class _SpinnerOrBar(BarColumn):
        """A bar when the stage's length is known; a spinner (not an empty ``0/?`` bar) when it is not."""

        spinner = SpinnerColumn()

        def render(self, task):
            if task.total is None and not task.finished:
                return self.spinner.render(task)
            return super().render(task)

    return Progress(
        TextColumn("[bold]{task.description:<8}", table_column=Column(no_wrap=True)),
        _SpinnerOrBar(bar_width=24),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        # Steps, loss, time left and a note in one column, which gives way (an ellipsis) in a narrow terminal.
        TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
        console=Console(file=stream, force_terminal=True),  # chosen for a terminal: draw bars even if rich doubts it
    )
