"""Helpers shared by the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """One line naming the machine a figure came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def write_result(name: str, data: dict, out_dir: Path | None = None) -> Path:
    """Write ``data`` (with the machine) as JSON to ``results/<name>.json``; returns the path."""
    from sdfkit.io import atomic_write_text

    out_dir = out_dir or RESULTS
    data = {"machine": machine(), **data}
    path = Path(out_dir) / f"{name}.json"
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path
