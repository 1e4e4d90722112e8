"""The Typer application every command module registers on, and how it reports failures.

Every way a command line can go wrong ends in one line on stderr and an exit
status, never a traceback:

- usage errors (unknown option or command, missing argument, a value of the
  wrong type): ``error: ...``, exit 2;
- a bare ``sdfkit``: the help on stdout, one ``error:`` line on stderr, exit 2
  (a script that forgot its command fails instead of silently succeeding);
- user errors (:class:`~sdfkit.errors.SdfkitError`: a bad file, a bad value,
  an existing output): ``error: ...``, exit 1;
- Ctrl-C: ``interrupted``, exit 130.

The handling lives in :class:`SdfkitGroup`, the app's click group, so that the
console entry point and ``typer.testing.CliRunner`` take the same path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sdfkit.errors import SdfkitError

#: Exit status of a usage error (click's and POSIX utilities' convention).
USAGE_EXIT = 2


def sdfkit_version() -> str:
    """The installed package's version (``importlib.metadata``); ``unknown`` when run from an uninstalled tree."""
    try:
        return package_version("sdfkit")
    except PackageNotFoundError:
        return "unknown"


def _one_line(text: str) -> str:
    """The first non-empty line of ``text``: an error is one line however it was worded."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def run_reporting_errors(invoke: Callable[[], Any]) -> int:
    """Run ``invoke`` (a click ``main`` in non-standalone mode) and turn every failure into one line.

    Returns the exit status; prints the error line on stderr.
    """
    try:
        code = invoke()
    except SdfkitError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory (try a lower --resolution or fewer points)", file=sys.stderr)
        return 1
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # click's usage errors, as typer now vendors them
        if type(exc).__name__ == "NoArgsIsHelpError":
            # The message is the help itself: it goes to stdout, where a reader (or `| less`) expects it.
            print(exc.format_message(), file=sys.stdout)
            print("error: no command given; run one of the commands above", file=sys.stderr)
            return USAGE_EXIT
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"error: {_one_line(exc.format_message())}{hint}", file=sys.stderr)
        return getattr(exc, "exit_code", USAGE_EXIT)
    # In non-standalone mode click returns the status of typer.Exit instead of exiting.
    return code if isinstance(code, int) else 0


class SdfkitGroup(TyperGroup):
    """The ``sdfkit`` command group: failures become one line on stderr (see the module docstring)."""

    def main(self, args=None, prog_name=None, complete_var=None,  # type: ignore[override]
             standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        sys.exit(run_reporting_errors(
            lambda: super(SdfkitGroup, self).main(args, prog_name, complete_var, standalone_mode=False, **extra)))


app = typer.Typer(
    name="sdfkit",
    cls=SdfkitGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        print(f"sdfkit {sdfkit_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option("--version", callback=_print_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """Meshes to neural signed distance fields and back.

    Signed distances are negative inside the surface, positive outside.

    Every command that writes refuses to replace an existing output unless given --force.
    """
