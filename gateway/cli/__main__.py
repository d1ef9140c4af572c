"""`python -m gateway.cli`: the same as the `centralita` console script."""

from gateway.cli import main

main()
