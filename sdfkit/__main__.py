from sdfkit.cli import main

main()
