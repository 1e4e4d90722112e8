"""The ``sdfkit`` command line: thin commands over library functions.

Each subcommand lives in its own module and registers itself on :data:`app`.
Usage errors exit with status 2, user errors
(:class:`~sdfkit.errors.SdfkitError`) with 1, Ctrl-C with 130, each after one
line on stderr (:class:`sdfkit.cli.app.SdfkitGroup`).
"""

from __future__ import annotations

# Importing a command module registers its command(s) on ``app``.
from sdfkit.cli import (
    encoder,  # noqa: F401
    eval,  # noqa: F401
    fit,  # noqa: F401
    mesh,  # noqa: F401
    prep,  # noqa: F401
    train,  # noqa: F401
    view,  # noqa: F401
)
from sdfkit.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: ``sdfkit ARGS``; failures are one line and an exit status (:mod:`sdfkit.cli.app`)."""
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    app(prog_name="sdfkit")  # "python -m sdfkit" names itself as the console script does
