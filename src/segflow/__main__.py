"""The ``segflow`` command (and ``python -m segflow``).

The console script enters here rather than in :mod:`segflow.cli`, whose import (Typer and
the command tree, about 0.1 s) runs before :func:`segflow.cli.main` can install its Ctrl-C
handler: an interrupt in that first moment printed Python's ``KeyboardInterrupt`` traceback.
Here it is the same one line and exit status 130 as anywhere else in a command.
"""

from __future__ import annotations

import sys

#: The line an interrupt prints before the command's own handler is installed (the text of
#: :data:`segflow.cli._interrupt.MESSAGE`, which cannot be imported yet; a test compares).
EARLY_MESSAGE = ("error: interrupted: what was committed before it is kept and the step in "
                 "progress was rolled back; run the command again to finish")


def main() -> None:
    """Run the command line of ``sys.argv``; exit status 130 on Ctrl-C while it starts."""
    try:
        from segflow.cli import main as cli_main
    except KeyboardInterrupt:
        print(EARLY_MESSAGE, file=sys.stderr)
        sys.exit(130)
    try:
        cli_main()
    except KeyboardInterrupt:  # after the handler's install, before the command's own catch
        print(EARLY_MESSAGE, file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
