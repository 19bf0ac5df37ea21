"""Errors that segflow reports to users as clear messages (never as tracebacks)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from numbers import Integral
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class SegflowError(Exception):
    """An error with a message meant for the user.

    The CLI prints ``str(error)`` and exits with status 1; ``--debug`` shows the traceback.
    """


class ConfigError(SegflowError):
    """The project file ``segflow.toml`` is missing, unreadable or invalid."""


class StoreError(SegflowError):
    """The DuckDB store cannot be opened, upgraded or written."""


def printable(text: str) -> str:
    """``text`` with its control and format characters written as escapes (``\\t``,
    ``\\r``, ``\\x1b``), other characters (any script, spaces) as they are.

    For names from data or from users inside messages: a tab or a carriage return in a
    segment name printed raw split or overwrote the error line, an escape sequence reached
    the terminal. The CLI writes every error and warning line through it.
    """
    import unicodedata

    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or unicodedata.category(c) == "Zs"
                   else c.encode("unicode_escape").decode("ascii") for c in text)


class Place(str):
    """Where data came from that is no file (``campaign CMP_WINBACK``: the store's rows of a
    campaign): given as an error's ``file``, :func:`where` writes it as it is, without the
    word ``file`` (``campaign CMP_WINBACK, column 'email'``)."""

    __slots__ = ()


def where(
    file: str | None = None,
    row: int | Sequence[int] | None = None,
    column: str | None = None,
    *,
    rows_in_all: int | None = None,
) -> str:
    """Where a problem is, as :class:`InputError` writes it before its message:
    ``file orders.csv, row 3, column 'amount'`` (the parts given, in that order; a
    :class:`Place` as it is: ``campaign CMP_WINBACK, column 'email'``).

    ``row`` is a data row number as the file counts it (1: the first data row, line 2 of a
    CSV with its header on line 1; 0: the header, written ``header``), or several such
    numbers (the first offending ones: ``rows 3, 7 and 9``; ``rows 3, 7, 9, ... (57 in
    all)`` when ``rows_in_all`` says there are more). Also for notes and warnings that point
    into a file."""
    if isinstance(row, Integral):
        row = int(row)
    elif row is not None and len(row) == 1 and not (rows_in_all or 0) > 1:
        row = int(row[0])  # one row: as a single number (0: the header)
    if row is None or isinstance(row, int):
        rows_text = "" if row is None else "header" if row == 0 else f"row {row}"
    else:
        shown = [str(r) for r in row]
        more = rows_in_all is not None and rows_in_all > len(shown)
        if more:
            rows_text = f"rows {', '.join(shown)}, ... ({rows_in_all:,} in all)"
        else:
            rows_text = f"rows {', '.join(shown[:-1])} and {shown[-1]}" if shown else ""
    return ", ".join(
        part
        for part in ((file if isinstance(file, Place) else f"file {file}") if file else "", rows_text,
                     f"column {column!r}" if column else "")
        if part
    )


class InputError(SegflowError):
    """A source file or table cannot be read as mapped.

    Parameters
    ----------
    message : str
        What was expected.
    file, row, column : optional
        Where the problem is: the source file, the 1-based data row number (0: the header
        row, written "header"; row 1 is line 2 of a CSV file) or the first offending row
        numbers, and the column (see :func:`where`).
    rows_in_all : int, optional
        With several ``row`` numbers: how many rows are affected in all.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | Sequence[int] | None = None,
        column: str | None = None,
        rows_in_all: int | None = None,
    ) -> None:
        self.message, self.file, self.column, self.rows_in_all = message, file, column, rows_in_all
        #: the first offending row (an int, or None); all given ones in ``rows``
        self.rows = (() if row is None else (int(row),) if isinstance(row, Integral)
                     else tuple(int(r) for r in row))
        self.row = self.rows[0] if self.rows else None
        place = where(file, row, column, rows_in_all=rows_in_all)
        super().__init__(f"{place}: {message}" if place else message)

    def in_file(self, file: str) -> InputError:
        """The same error naming ``file`` (itself when it names a file already)."""
        if self.file is not None:
            return self
        return InputError(self.message, file=file, row=self.rows or None, column=self.column,
                          rows_in_all=self.rows_in_all)


class ArgumentError(InputError, ValueError):
    """An argument of a library call (a prediction's ``x``, ``t_x``, ``T``, horizon ``t``)
    holds values outside its domain: the message names the method, the argument, the rule,
    the first offending value and how many of them offend. A ``ValueError`` too, as
    scikit-learn's ``check_*`` helpers raise, so notebook code catching that works."""


class BinaryFileError(InputError):
    """A file that is not a file of its format: one given as delimited text or JSON lines
    holds binary data (``sources._binary``), a Parquet file cannot be read as Parquet, a
    JSON-lines file holds no JSON object. In a folder or glob source, the ingest refuses that
    file alone unless ``binary_files = "fail"``; when every file of the source is refused,
    the ingest stops (``segflow.sources._ingest.no_file_fits``)."""


class FileSchemaError(BinaryFileError):
    """A file whose columns do not fit the source's mapping (a mapped column missing, or
    holding lists or structures): in a folder or glob source, refused alone as a file that
    is not a file of its format is (``binary_files``), the other files loaded; when no file of
    the source fits, the ingest stops on it (``segflow.sources._ingest.no_file_fits``)."""


#: The packages whose errors are the engine's (the data could not be computed with), not
#: segflow's: an error raised in them is one line for the user, its traceback under --debug.
ENGINE_PACKAGES = frozenset({"duckdb", "_duckdb", "ibis", "sklearn", "numpy", "scipy", "pandas",
                             "pyarrow", "kmodes", "sqlglot"})


def engine_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an engine's error (DuckDB's, scikit-learn's, NumPy's...): its type
    comes from one of :data:`ENGINE_PACKAGES`, or it was raised in one of them (scikit-learn
    raises a plain ``ValueError`` for an infinite input)."""
    if not isinstance(exc, Exception) or isinstance(exc, SegflowError):
        return False
    if type(exc).__module__.split(".")[0] in ENGINE_PACKAGES:
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return str(module).split(".")[0] in ENGINE_PACKAGES


def engine_message(exc: BaseException) -> str:
    """An engine's error as one line: its kind and first line, and how to see the rest."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    kind = type(exc).__name__
    return (f"the engine failed on this data ({kind}: {first}); rerun with --debug for the "
            "traceback")


@contextmanager
def about_file(file: str | Path | None) -> Iterator[None]:
    """Run a library call on the data of ``file`` (a file command's input): an
    :class:`InputError` it raises without naming a file names ``file`` (the library knows
    tables, not files), and so does an engine's error (:func:`engine_error`: DuckDB's
    ``OutOfRangeException``, a scikit-learn ``ValueError``), as one line whose cause (for
    ``--debug``) is the original. Wrap only the calls that read that one file's data, so
    that an error is not put on a file it is not about."""
    try:
        yield
    except InputError as exc:
        if file is None or exc.file is not None:
            raise
        raise exc.in_file(str(file)) from exc
    except Exception as exc:
        if file is None or not engine_error(exc):
            raise
        raise InputError(engine_message(exc), file=str(file)) from exc
