"""The Typer application every command module registers on."""

import typer

app = typer.Typer(
    name="sdfkit",
    help="Meshes to neural signed distance fields and back.\n\n"
    "Signed distances are negative inside the surface, positive outside.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
