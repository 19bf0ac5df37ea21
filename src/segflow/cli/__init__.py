"""The ``segflow`` command: a thin Typer layer over the library.

Each module registers its commands through ``register(app)``; the table below is the whole
command tree. Every command has ``--help``.
"""

from __future__ import annotations

import warnings

import typer

from segflow.cli import _common

app = typer.Typer(
    name="segflow",
    help="segflow: customer segmentation and customer migration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short errors."),
) -> None:
    _common.STATE["debug"] = debug
    if not debug:
        warnings.showwarning = _common.show_warning


def _register_all() -> None:
    from segflow.cli import (
        _campaign,
        _churn,
        _cluster,
        _clv,
        _core,
        _export,
        _generate,
        _ingest,
        _migrate,
        _refresh,
        _segment,
    )

    # _segment must come before _cluster: _cluster adds commands to the segment group.
    for module in (_core, _generate, _ingest, _segment, _cluster, _migrate, _clv, _churn, _campaign,
                   _export, _refresh):
        module.register(app)


_register_all()


def main() -> None:
    """Console entry point."""
    app()
