"""`python -m novelcraft`: the same CLI as the `novelcraft` command."""

from novelcraft.cli.main import run

run()
