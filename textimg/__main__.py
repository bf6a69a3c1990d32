"""`python -m textimg` runs the same CLI as the `textimg` command."""

from textimg.cli import main

main()
