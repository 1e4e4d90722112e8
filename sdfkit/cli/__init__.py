"""The ``sdfkit`` command line: thin commands over library functions.

Each subcommand lives in its own module and registers itself on :data:`app`.
Usage errors exit with status 2, user errors
(:class:`~sdfkit.errors.SdfkitError`) with 1, Ctrl-C with 130, each after one
line on stderr (:class:`sdfkit.cli.app.SdfkitGroup`).
"""

from __future__ import annotations

from sdfkit.cli.app import app

# Importing a command module registers its command(s) on ``app``.
from sdfkit.cli import prep  # noqa: E402,F401
from sdfkit.cli import train  # noqa: E402,F401
from sdfkit.cli import fit  # noqa: E402,F401
from sdfkit.cli import mesh  # noqa: E402,F401
from sdfkit.cli import eval  # noqa: E402,F401
from sdfkit.cli import view  # noqa: E402,F401

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: ``sdfkit ARGS``; failures are one line and an exit status (:mod:`sdfkit.cli.app`)."""
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    app(prog_name="sdfkit")  # "python -m sdfkit" names itself as the console script does
