"""Shared pieces of the CLI: error handling, JSON output, progress bars, project lookup.

Commands stay thin: parse options, call the library, print. Errors that users can fix
(:class:`segflow.SegflowError`) are printed as one clear line and exit with status 1;
``segflow --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from segflow._dates import as_date
from segflow.errors import InputError, SegflowError, printable

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table as _RichTable
    from rich.text import Text as _RichText

    from segflow.project import Project

# Rich loads on the first message, not at import: ``segflow --help`` imports only Typer/Click.


class _LazyConsole:
    """A Rich console created on first use (``stderr=True``: messages, progress, errors)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


#: Human output goes to stderr so that ``--json`` output on stdout stays machine-readable.
#: To a pipe or a file, messages are not hard-wrapped (Rich would break them at 80 columns:
#: one message, one line, for grep and logs) and tables keep the width they have on stdout.
console: Console = _LazyConsole(  # type: ignore[assignment]
    stderr=True, **({} if sys.stderr.isatty() else {"soft_wrap": True, "width": 200}))
STATE = {"debug": False, "json": False}


def Table(*args: Any, **kwargs: Any) -> _RichTable:  # noqa: N802 - stands in for the class
    """A :class:`rich.table.Table` (Rich imported on first use)."""
    from rich.table import Table as _Table

    return _Table(*args, **kwargs)


def Text(*args: Any, **kwargs: Any) -> _RichText:  # noqa: N802 - stands in for the class
    """A :class:`rich.text.Text`: printed as written, never read as markup."""
    from rich.text import Text as _Text

    return _Text(*args, **kwargs)


class _ResultConsole:
    """Where result tables go: stdout, except under ``--json``, whose stdout holds the JSON
    document alone (the tables then go to stderr with the messages). Piped to a file, tables
    keep their full width (Rich would squeeze them to 80 columns and cut the headers)."""

    def __init__(self) -> None:
        self._out = _LazyConsole(width=None if sys.stdout.isatty() else 200)

    def print(self, *args: Any, **kwargs: Any) -> None:
        (console if STATE["json"] else self._out).print(*args, **kwargs)


stdout = _ResultConsole()


def _json_mode(value: bool) -> bool:
    STATE["json"] = bool(value)
    return value


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn segflow errors (and a few OS errors) into a clear message and exit code 1, and
    an interrupt (Ctrl-C, :mod:`segflow.cli._interrupt`) into one line and exit code 130."""
    from segflow.cli._interrupt import INTERRUPTED

    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        if STATE["debug"]:
            raise
        _interrupted()
    except (SegflowError, OSError) as exc:
        # OSError: the machine refused a file (missing, a read-only file system, a path
        # through a file, no space left, ...): one line naming the file, not a traceback
        if STATE["debug"]:
            raise
        if INTERRUPTED[0]:
            _interrupted()
        from rich.markup import escape

        # the message as written: "[engine] kind" is a TOML name, not a Rich style tag
        # control characters (a tab or CR in a segment name) as escapes: one line, intact
        console.print(f"[bold red]error:[/] {escape(printable(_message(exc)))}", highlight=False,
                      soft_wrap=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        if STATE["debug"]:
            raise
        if INTERRUPTED[0]:  # DuckDB's "Query interrupted" and what followed from it
            _interrupted()
        from rich.markup import escape

        from segflow.errors import engine_error, engine_message

        if _out_of_memory(exc):
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            line = OUT_OF_MEMORY.format(first)
        elif engine_error(exc):  # DuckDB's, scikit-learn's...: one line, --debug for the rest
            line = engine_message(exc)
        else:
            raise
        console.print(f"[bold red]error:[/] {escape(printable(line))}", highlight=False,
                      soft_wrap=True)
        raise typer.Exit(1) from None


#: Click's usage error (of the Click that Typer uses: Typer 0.2x carries its own copy).
_UsageError = typer.BadParameter.__base__


class OneLineUsageErrors(TyperGroup):
    """The root group: a usage error of any command (an unknown option or command, a missing
    argument, a bad value) is one line on stderr, exit status 2 (Click prints the usage, a
    hint and the error on four)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            with _one_line_usage():
                return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:  # while the root options are read (Typer imports pydantic)
            if STATE["debug"]:
                raise
            _interrupted()

    def invoke(self, ctx: Any) -> Any:
        try:
            with _one_line_usage():  # the subcommands parse their arguments in here
                return super().invoke(ctx)
        except KeyboardInterrupt:
            # Ctrl-C outside a command's user_errors() (its imports, e.g. `run`'s of
            # segflow.project in its first second): the same line, not Typer's silent 130
            if STATE["debug"]:
                raise
            _interrupted()


@contextlib.contextmanager
def _one_line_usage() -> Iterator[None]:
    try:
        yield
    except _UsageError as exc:
        if type(exc).show is _UsageError.show:  # not "no arguments: the help" (its own show)
            exc.ctx = exc.ctx or _innermost_context(exc.__traceback__)
            exc.show = lambda file=None, exc=exc: print(_usage_line(exc), file=file or sys.stderr)
        raise


def _innermost_context(tb: Any) -> Any:
    """The context of the command whose arguments failed: Click's parser raises some errors
    ("option '--project' requires an argument") without one."""
    ctx = None
    while tb is not None:
        ctx = tb.tb_frame.f_locals.get("ctx", ctx)
        tb = tb.tb_next
    return ctx if hasattr(ctx, "command_path") else None


def _usage_line(exc: Any) -> str:
    """A Click usage error as one line: ``segflow segment: no such option: --bogus (possible
    options: --out); see 'segflow segment --help'``."""
    message = " ".join(part.strip() for part in exc.format_message().splitlines() if part.strip())
    if message[:1].isupper() and message[1:2].islower():  # "No such ...", not "CSV ..."
        message = message[0].lower() + message[1:]
    message = re.sub(r"\.\s+Did you mean (.+)$", r" (did you mean \1)", message.rstrip("."))
    message = message.replace("(Possible ", "(possible ")
    ctx = exc.ctx
    if ctx is None:
        return f"segflow: {message}"
    hint = ""
    if ctx.command.get_help_option(ctx) is not None:
        hint = f"; see '{ctx.command_path} {ctx.help_option_names[0]}'"
    return f"{ctx.command_path}: {message}{hint}"


class DateType:
    """The type of every date option: ISO ``YYYY-MM-DD`` read by :func:`segflow._dates.as_date`
    (as the library reads a date), a bad value a usage error in one wording, through
    :class:`OneLineUsageErrors`: ``segflow segment: invalid value for '--snapshot':
    '2024-13-01' is not a date; expected YYYY-MM-DD; see 'segflow segment --help'``.

    Pass it as ``typer.Option(None, "--snapshot", parser=DATE)`` (Typer 0.2x converts values
    with a parser callable; its Click copy has no ``ParamType`` to plug in). ``words``: the
    values besides a date that an option accepts as they are (``DateType("first")``).
    """

    name = "date"

    def __init__(self, *words: str) -> None:
        self.words = words

    def __call__(self, value: Any) -> dt.date | str | None:
        if value is None or value in self.words:
            return value
        try:
            return as_date(value)
        except InputError as exc:
            also = "".join(f" or {word!r}" for word in self.words)
            raise typer.BadParameter(f"{exc}{also}") from None

    def __repr__(self) -> str:
        return f"DateType({', '.join(map(repr, self.words))})"


#: A date option's parser: ``typer.Option(None, "--snapshot", parser=DATE)``.
DATE = DateType()


class Choice:
    """The type of an option taking one of a few words: another value is a usage error
    (exit status 2, one line through :class:`OneLineUsageErrors`, as a mistyped option):
    ``segflow export segments: invalid value for '--pii': 'clear' is not one of hash, mask,
    omit, include; see 'segflow export segments --help'``.

    Pass it as ``typer.Option("hash", "--pii", parser=Choice("hash", "mask", ...))``.
    ``integers``: a whole number of at least ``integers`` is accepted too (as an int), e.g.
    ``Choice("auto", integers=1)`` for ``--k``, ``Choice(integers=1)`` for a count.
    """

    name = "choice"

    def __init__(self, *words: str, integers: int | None = None) -> None:
        self.words = words
        self.integers = integers

    def __call__(self, value: Any) -> str | int | None:
        if value is None or value in self.words:
            return value
        if self.integers is not None and re.fullmatch(r"[+-]?\d+", str(value).strip()):
            if int(value) >= self.integers:
                return int(value)
            raise typer.BadParameter(f"{value!r} is less than {self.integers}")
        if self.integers is None:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(self.words)}")
        words = "".join(f"{w!r} or " for w in self.words)
        raise typer.BadParameter(f"{value!r} is not {words}a whole number of at least {self.integers}")

    def __repr__(self) -> str:
        also = [] if self.integers is None else [f"integers={self.integers}"]
        return f"Choice({', '.join([*map(repr, self.words), *also])})"


def _interrupted() -> None:
    from segflow.cli._interrupt import MESSAGE

    console.print(f"[bold red]error:[/] {MESSAGE}", highlight=False, soft_wrap=True)
    raise typer.Exit(130) from None


def _message(exc: BaseException) -> str:
    """The error's one line: an OS error as "what: file" (its errno left out)."""
    if isinstance(exc, OSError) and not isinstance(exc, SegflowError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        if exc.filename2 is not None:
            where += f" -> {exc.filename2}"
        blocker = _not_a_folder(exc)
        if blocker is not None:
            # a folder to create (an output's parent) is an existing file or a device
            # (/dev/null/x.csv): "File exists: /dev/null" misleads
            path = str(exc.filename)
            return (f"{blocker} is not a folder: a file is in the way of a folder to create"
                    + (f" ({path})" if path != blocker else ""))
        return f"{exc.strerror}{where}"
    return str(exc)


def _not_a_folder(exc: OSError) -> str | None:
    """The part of the error's path that should be a folder and is something else (a file,
    ``/dev/null``): the path itself for a folder that could not be made (FileExistsError),
    the first such parent for a path through it (NotADirectoryError); None otherwise."""
    if not isinstance(exc, FileExistsError | NotADirectoryError) or exc.filename is None:
        return None
    import os

    path = Path(os.fsdecode(exc.filename))
    candidates = [path] if isinstance(exc, FileExistsError) else [*reversed(path.parents), path]
    for p in candidates:
        if p.exists() and not p.is_dir():
            return str(p)
    return None


#: The one line a command prints when DuckDB runs out of memory.
OUT_OF_MEMORY = ("the engine ran out of memory ({}): raise memory_limit under [project] in "
                 "segflow.toml (docs/operations.md), or free memory on the machine")


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB's out-of-memory error (DuckDB imported only if it was)."""
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(exc, duckdb.OutOfMemoryException)


def print_labelled(label: str, text: object, *, style: str = "yellow", indent: str = "") -> None:
    """One ``label: text`` line on stderr (a warning, a note, an alert), ``text`` as written:
    neither Rich markup (a segment named ``[bold]`` vanished) nor control characters (a tab
    or CR in a name, as escapes: :func:`segflow.errors.printable`)."""
    from rich.markup import escape

    head = f"[{style}]{label}[/]" if style else escape(label)
    console.print(f"{indent}{head}: {escape(printable(str(text)))}", highlight=False,
                  soft_wrap=True)


def list_line(value: object) -> tuple[str, bool]:
    """``value`` as one line of a list printed one value per line (``migrate who``'s ids),
    and whether it had to be quoted: as it is, unless it holds a line break, a tab or another
    control or format character (anything :func:`segflow.errors.printable` escapes), starts
    with a double quote, is empty or starts or ends with white space (a shell's ``read``
    skips an empty line and trims the spaces); then as a JSON string (``"a\\nb"``, ``""``,
    ``" 42"``, non-printable characters as ``\\uXXXX``), which reads back to the exact value.
    So each line is one value, and a line that starts with ``"`` is always a quoted one."""
    text = str(value)
    if (printable(text) == text and not text.startswith('"') and text
            and text == text.strip()):
        return text, False
    quoted = json.dumps(text, ensure_ascii=False)  # escapes ", \\ and U+0000-U+001F
    return "".join(c if printable(c) == c else json.dumps(c)[1:-1] for c in quoted), True


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Print a warning as one line on stderr (data policies warn with counts), labelled by
    the category's ``label`` (``note`` for advice such as SchemeCheckWarning, else
    ``warning``); the message is printed as text, never as Rich markup ("[rfm]" stays)."""
    from rich.markup import escape

    label = getattr(category, "label", "warning")
    console.print(f"[yellow]{label}:[/] {escape(printable(str(message)))}", highlight=False,
                  soft_wrap=True)


def print_json(payload: Any) -> None:
    """Print a JSON document on stdout.

    Values go through :func:`segflow._result.jsonable`: floats at full precision (15
    significant digits, NaN as null), every date as YYYY-MM-DD and every point in time as
    YYYY-MM-DDTHH:MM:SS, NumPy and pandas values as plain JSON.
    """
    from segflow._result import jsonable

    sys.stdout.write(json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def progress(disable: bool = False) -> Progress:
    """A Rich progress bar on stderr (hidden with ``--json`` or when not a terminal).

    Steps with an unknown total show a spinner and the elapsed time, not a count."""
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    class _CountColumn(ProgressColumn):
        """``done/total`` when the total is known; nothing (never "0/None") while it is not."""

        def render(self, task) -> _RichText:  # noqa: ANN001
            if task.total is None:
                return Text("")
            return Text(f"{task.completed:,.0f}/{task.total:,.0f}", style="progress.download")

    console.file  # noqa: B018 - creates the Rich console before Progress reads it
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        _CountColumn(),
        TimeElapsedColumn(),
        console=console._console,
        # not a terminal (a log, a pipe): Rich would still print each bar's last state
        disable=disable or not console._console.is_terminal,
        transient=False,
    )


ProjectDirOption = typer.Option(
    Path("."), "--project", "-p", help="Project folder holding segflow.toml.", show_default=True
)
JsonOption = typer.Option(
    False, "--json", help="Print a machine-readable JSON summary on stdout.", callback=_json_mode
)
EngineOption = typer.Option(
    None, "--engine", parser=Choice("duckdb", "spark"),
    help="Engine: duckdb or spark (default: [engine] kind in segflow.toml, else duckdb).",
)


def on_spark(project_dir: Path, engine: str | None = None) -> bool:
    """Whether a command on the project computes on Spark: ``--engine`` when given, else
    ``[engine] kind`` of its segflow.toml.

    Raises
    ------
    SegflowError
        No segflow.toml, or an unknown engine name."""
    from segflow.config import Settings
    from segflow.engine import resolve_engine

    return resolve_engine(engine, Settings.load(project_dir).engine) == "spark"


#: The way round for a command that reads the DuckDB store (empty on a Spark project).
VIA_DUCKDB_STORE = ("it reads the project's DuckDB store, which a Spark ingest leaves empty: load "
                    "the same sources there too with `segflow ingest --engine duckdb`, then add "
                    "--engine duckdb to this command")


def refuse_on_spark(project_dir: Path, command: str, instead: str,
                    engine: str | None = None) -> None:
    """Fail with one line when ``command`` (e.g. ``"segflow churn train"``) would read or
    write the project's DuckDB store although the project is on Spark (its data is in the
    warehouse); ``instead`` says what to use.

    Raises
    ------
    SegflowError
        The project is on Spark (see :func:`on_spark`)."""
    if on_spark(project_dir, engine):
        raise SegflowError(f"`{command}` is not available on Spark yet (this project's engine "
                           f"is spark: its data is in the warehouse); {instead}")


@contextlib.contextmanager
def open_project(project_dir: Path, tables: Iterable[str], *, read_only: bool = True,
                 engine: str | None = None) -> Iterator[Project]:
    """The project, closed at the end; ``read_only`` (a command that only reads) opens its
    store with :meth:`Project.open_reading <segflow.project.Project.open_reading>`, which
    works while a ``segflow refresh`` runs. On Spark (:func:`on_spark`) its store is an
    in-memory DuckDB copy of the warehouse's committed ``tables`` and run log
    (:func:`segflow.warehouse.tables_store`): readers run unchanged, and nothing written to
    it is kept (commands that write must refuse Spark, :func:`refuse_on_spark`)."""
    from segflow.project import Project

    if not on_spark(project_dir, engine):
        with Project.open_reading(project_dir) if read_only else Project.open(project_dir) \
                as project:
            yield project
        return
    from segflow.config import Settings
    from segflow.store._spark import SparkStore
    from segflow.warehouse import tables_store

    settings = Settings.load(project_dir)
    copy = tables_store(SparkStore.open(settings.engine, Path(project_dir)), tables)
    with Project(Path(project_dir), settings, copy) as project:
        yield project


def scheme_segments(items: Iterable[str], project_dir: Path | None) -> list[tuple[str, str]]:
    """``--segment SCHEME=SEGMENT`` options as (scheme, segment) pairs. A scheme's name may
    hold ``=`` (``x=1``): the longest scheme of the project's ``segflow.toml`` that ``item``
    starts with, followed by ``=``, is the scheme; otherwise the text up to the first ``=``
    (``project_dir`` None: a customer file's column). Raises InputError without ``=``."""
    names: list[str] = []
    if project_dir is not None:
        from segflow.config import Settings
        from segflow.errors import ConfigError

        try:
            names = sorted((s.name for s in Settings.load(project_dir).schemes), key=len, reverse=True)
        except ConfigError:
            names = []  # the command itself reports a broken project file
    pairs = []
    for item in items:
        scheme = next((n for n in names if item.startswith(n + "=")), None)
        if scheme is not None:
            pairs.append((scheme, item[len(scheme) + 1:]))
            continue
        scheme, sep, segment = item.partition("=")
        if not sep:
            raise InputError(f"--segment takes SCHEME=SEGMENT, not {item!r}")
        pairs.append((scheme, segment))
    return pairs
