"""The ``sandbox`` command line (``sandbox.cli.app``)."""

from sandbox.cli.app import app, main

__all__ = ["app", "main"]
