"""`python -m recursa.cli`: the `recursa` command, for Ray job entrypoints."""

from recursa.cli import main

main()
