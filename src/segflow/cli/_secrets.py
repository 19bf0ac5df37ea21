"""Secrets given to the CLI: an API token, a password or token inside a URL.

A command line is public on a Unix machine: every user sees it in the process list (``ps
-ef``, ``/proc/<pid>/cmdline``) for as long as the command runs, and the shell keeps it in
its history. So the commands take secrets from places only their owner reads (a file, the
standard input, an environment variable: ``/proc/<pid>/environ`` is readable by the same
user only) and warn on stderr when one is typed on the command line anyway.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import typer

from segflow.errors import InputError

#: The end of every warning about a secret typed on the command line.
SEEN_BY_ALL = ("is visible to every user of this machine in the process list (ps) while the "
               "command runs, and stays in your shell history")


def typed(ctx: typer.Context, param: str) -> bool:
    """Whether the value of option ``param`` (its Python name) was typed on the command line
    (not taken from its environment variable or its default). Compared by name: Typer
    carries its own copy of Click, whose ``ParameterSource`` is not ``click``'s."""
    source = ctx.get_parameter_source(param)
    return getattr(source, "name", None) == "COMMANDLINE"


def warn(what: str, instead: str) -> None:
    """One line on stderr: ``warning: <what> on the command line is visible ...; <instead>``,
    as text (:func:`segflow.cli._common.print_labelled`: no Rich markup)."""
    from segflow.cli._common import print_labelled

    print_labelled("warning", f"{what} on the command line {SEEN_BY_ALL}; {instead}",
                   style="bold yellow")


def read_token(token: str | None, token_file: Path | None) -> str | None:
    """The API token from ``--token`` (``-`` reads one line of the standard input) or from
    ``--token-file`` (the file's first line; a file others may read is warned about).

    Raises :class:`InputError` (one line) when both are given, the file cannot be read, or
    the token read is empty."""
    if token is not None and token_file is not None:
        raise InputError("give --token or --token-file, not both")
    if token == "-":
        token = sys.stdin.readline().strip()
        if not token:
            raise InputError("--token -: no token on the standard input")
        return token
    if token_file is None:
        return token
    try:
        text = token_file.read_text(encoding="utf-8")
        mode = token_file.stat().st_mode
    except OSError as exc:
        raise InputError(f"--token-file {token_file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"--token-file {token_file}: not a text file") from None
    lines = text.strip().splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"--token-file {token_file}: the file is empty")
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        from segflow.cli._common import print_labelled

        # the path as written: no Rich markup (a folder named [x] vanished), control
        # characters as escapes
        print_labelled("warning", f"--token-file {token_file} can be read by other users "
                       f"(mode {stat.S_IMODE(mode):o}); chmod 600 it", style="bold yellow")
    return lines[0].strip()


def url_holds_secret(url: str) -> bool:
    """Whether ``url`` carries a password (``user:password@``) or a secret query parameter
    (``password=``, ``token=``, ... :data:`segflow.exports._webhook.SECRET_PARAMS`)."""
    from segflow.exports._webhook import redact_url

    return redact_url(url) != url
