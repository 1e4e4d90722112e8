"""The ``sdfkit`` command line: thin commands over library functions.

Each subcommand lives in its own module and registers itself on :data:`app`.
Usage errors exit with status 2, user errors
(:class:`~sdfkit.errors.SdfkitError`) with 1, Ctrl-C with 130, each after one
line on stderr (:class:`sdfkit.cli.app.SdfkitGroup`).
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn

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

__all__ = ["app", "console", "main"]


def main() -> None:
    """``sdfkit ARGS`` in this process; failures are one line and an exit status (:mod:`sdfkit.cli.app`), raised
    as :class:`SystemExit`."""
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    app(prog_name="sdfkit")  # "python -m sdfkit" names itself as the console script does


def exit_status(code: object) -> int:
    """The status :class:`SystemExit` ``code`` gives a process, as Python's own exit does: None is 0, an int
    itself, anything else is printed on stderr and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def console() -> NoReturn:
    """The ``sdfkit`` script and ``python -m sdfkit``: :func:`main`, then the process ends without the
    interpreter's teardown.

    By then every output is written, closed and renamed into place. The teardown would free torch's and the
    meshes' objects one by one, 0.83-0.97 s after a short fit
    (``benchmarks/results/command_exit-20261207.md``; BENCHMARKS.md, "The command's end").
    Exit handlers still run (they flush logging and join multiprocessing's children), and so do the flushes of
    stdout and stderr, whose buffers hold the last lines when they are pipes.
    """
    try:
        main()
        status = 0
    except SystemExit as done:
        status = exit_status(done.code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone (broken pipe) or a closed stream: nothing left to say
            pass
    os._exit(status)
