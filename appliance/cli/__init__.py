"""Command-line interface: `cli/main.py` assembles one sub-app per stage."""
