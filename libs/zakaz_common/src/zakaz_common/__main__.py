"""`python -m zakaz_common` is the `zakaz` command."""

from zakaz_common.cli import main

main()
