"""The ``sdfkit`` command line: thin commands over library functions.

Each subcommand lives in its own module and registers itself on :data:`app`.
User errors (:class:`~sdfkit.errors.SdfkitError`) are printed as one line and
exit with status 1; Ctrl-C exits with 130.
"""

from __future__ import annotations

import sys

import typer

# Importing a command module registers its command(s) on ``app``.
from sdfkit.cli import (
    encoder,  # noqa: E402,F401
    eval,  # noqa: E402,F401
    fit,  # noqa: E402,F401
    mesh,  # noqa: E402,F401
    prep,  # noqa: E402,F401
    train,  # noqa: E402,F401
    view,  # noqa: E402,F401
)
from sdfkit.cli.app import app
from sdfkit.errors import SdfkitError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    from sdfkit.runtime import tune_allocator

    tune_allocator()
    try:
        code = app(standalone_mode=False)
    except SdfkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        print("error: out of memory (try a lower --resolution or fewer points)", file=sys.stderr)
        sys.exit(1)
    except SystemExit:
        raise
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (bad option, missing argument) in non-standalone mode
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    # In non-standalone mode click returns the code of typer.Exit instead of exiting.
    sys.exit(code if isinstance(code, int) else 0)
