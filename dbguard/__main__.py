"""`python -m dbguard` runs the CLI."""

from dbguard.cli import main

main()
