"""Errors that segflow reports to users as clear messages (never as tracebacks)."""

from __future__ import annotations


class SegflowError(Exception):
    """An error with a message meant for the user.

    The CLI prints ``str(error)`` and exits with status 1; ``--debug`` shows the traceback.
    """


class ConfigError(SegflowError):
    """The project file ``segflow.toml`` is missing, unreadable or invalid."""


class StoreError(SegflowError):
    """The DuckDB store cannot be opened, upgraded or written."""


class InputError(SegflowError):
    """A source file or table cannot be read as mapped.

    Parameters
    ----------
    message : str
        What was expected.
    file, row, column : optional
        Where the problem is: the source file, the 1-based data row number (0: the header
        row, written "header") and the column.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file, self.row, self.column = file, row, column
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                ("header" if row == 0 else f"row {row}") if row is not None else "",
                f"column {column!r}" if column else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
