from sdfkit.cli import console

console()
