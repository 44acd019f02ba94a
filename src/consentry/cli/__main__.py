"""`python -m consentry.cli`: the command line."""

from consentry.cli import main

main()
