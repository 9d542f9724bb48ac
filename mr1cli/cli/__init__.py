"""The `mr1` command line (Typer): `app.py` holds the commands, thin wrappers that parse, build the
config and call one function; `launch.py` the options that choose where a grid runs."""

from mr1cli.cli.app import app, main

__all__ = ["app", "main"]
