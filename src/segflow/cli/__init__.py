"""The ``segflow`` command: a thin Typer layer over the library.

Each module registers its commands through ``register(app)``; the table below is the whole
command tree. Every command has ``--help``.
"""

from __future__ import annotations

import warnings

import typer

from segflow.cli import _common
from segflow.cli._examples import add_examples

app = typer.Typer(
    name="segflow",
    help="segflow: customer segmentation and customer migration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_common.OneLineUsageErrors,  # a usage error of any command: one line, exit status 2
)


def _print_version(value: bool) -> None:
    if value:
        from segflow import __version__

        typer.echo(f"segflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short errors."),
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    _common.STATE["debug"] = debug
    _common.STATE["json"] = False  # set again by a command's --json option
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
        _profile,
        _refresh,
        _segment,
        _server,
        _warehouse,
    )

    # _segment must come before _cluster and _profile: they add commands to the segment group.
    for module in (_core, _generate, _ingest, _segment, _cluster, _profile, _migrate, _clv, _churn,
                   _campaign, _server, _export, _refresh, _warehouse):
        module.register(app)
    _plain_help(app)
    add_examples(app)


def _plain_help(typer_app: typer.Typer) -> None:
    """Help texts are plain text, not Rich markup, in every command group: TOML names such as
    ``[[sources]]`` must print as written (Rich would read them as style tags and drop them)."""
    typer_app.rich_markup_mode = None
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _plain_help(group.typer_instance)


_register_all()


def main() -> None:
    """Console entry point. A closed stdout (``segflow ... | head``) ends quietly, without an
    "Exception ignored" traceback at exit."""
    import os
    import sys

    from segflow.cli import _interrupt

    _interrupt.install()  # Ctrl-C: one line, exit status 130 (never lost, no traceback)
    try:
        app()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at devnull so that flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
