"""The child of the fault tests' commands (tests/sources/test_sources_faults.py): run one
``segflow`` command with its output discarded. Importable by name (``tests.sources.fork_child``)
so a fork server can load it once."""

from __future__ import annotations

import os
import sys


def run_cli(args: list[str]) -> None:
    """``segflow *args`` in this process, stdout and stderr to /dev/null."""
    from segflow.cli import main

    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.argv = ["segflow", *args]
    main()
