"""Checkpoint files: ``torch.save`` written atomically, loaded with ``weights_only=True``.

The atomic writing itself lives one layer down (:mod:`data_prep.files`) and is
imported here so that library code has one place to reach for file output.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from data_prep.errors import SdfkitError
from data_prep.files import (  # noqa: F401  (re-exported for the library's writers)
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    describe_os_error,
    make_temp_dir,
    replace_dir,
)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically. ``obj`` must hold tensors and plain data only."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """Load a file written by :func:`save_torch` with ``weights_only=True``.

    Raises :class:`SdfkitError` with one line for a missing, truncated,
    corrupt or foreign file; never unpickles arbitrary objects.
    """
    path = Path(path)
    if not path.is_file():
        raise SdfkitError(f"{what} not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SdfkitError(f"cannot load {what} {path}: not a valid sdfkit file ({reason[:120]})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("sdfkit"), dict):
        raise SdfkitError(f"cannot load {what} {path}: not an sdfkit file")
    return obj
