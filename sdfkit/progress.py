"""The progress bar of long stages (training, fitting): steps, the current loss, elapsed and remaining time."""

from __future__ import annotations


def loss_progress(enabled: bool):
    """A rich ``Progress`` whose tasks carry a ``loss`` field; silent when ``enabled`` is false."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )
