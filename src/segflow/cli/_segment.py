"""CLI: ``segflow segment`` (scheme assignment) and its subcommands.

``segment_app`` is the command group; ``_cluster.py`` adds ``cluster`` and ``profile`` to it.
"""

from __future__ import annotations

import typer

segment_app = typer.Typer(
    help="Assign customers to the segments of a scheme; cluster; profile segments.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    """Add ``segflow segment`` to the root app."""
    app.add_typer(segment_app, name="segment")
