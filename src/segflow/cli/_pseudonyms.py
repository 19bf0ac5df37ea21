"""Customer ids in the files the CLI writes from a user's file or the store, as the exports
write them.

A customer id that is (or holds) an e-mail address or a phone number is written as its
pseudonymous key (``pid-`` and an HMAC under the project's secret key:
:mod:`segflow.exports._pseudonym`) unless ``--pii include``: the same key as ``segflow
export segments`` writes for the customer, so the lists still join. A file the user brought
(``campaign audience --customers``, ``campaign uplift --scores-out``) is keyed with the
secret of the project of ``--project``; when its ids need a key and there is no project
there, the command stops with one line saying what to do (a key of its own would join with
nothing, and the ids in clear are only written on request).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segflow.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def project_store(project_dir: Path) -> Path | None:
    """The store file of the project at ``project_dir`` (a folder holding ``segflow.toml``,
    or that file), as its settings name it; None when there is no project file there (an
    invalid one is a :class:`~segflow.errors.ConfigError`)."""
    from segflow.config import Settings

    folder = project_dir if project_dir.is_dir() else project_dir.parent
    try:
        settings = Settings.load(project_dir)
    except ConfigError:
        if not (project_dir / "segflow.toml" if project_dir.is_dir() else project_dir).exists():
            return None
        raise
    return folder / settings.project.store


def count_personal_ids(table: pa.Table, columns: Sequence[str]) -> tuple[int, str | None]:
    """How many ids of ``columns`` (those ``table`` has) are e-mail addresses or phone numbers
    (:func:`segflow.exports._pseudonym.personal_ids`), and the first column holding one."""
    import pyarrow.compute as pc

    from segflow.exports._pseudonym import personal_ids

    n, first = 0, None
    for c in columns:
        if c in table.column_names:
            k = pc.sum(personal_ids(table.column(c))).as_py() or 0
            n += k
            first = first or (c if k else None)
    return n, first


def key_ids(table: pa.Table, pii: str, project_dir: Path, *,
            columns: Sequence[str] = ("customer_id",), source: str | None = None,
            store_path: Path | None = None) -> pa.Table:
    """``table`` with the ids of ``columns`` that are (or hold) e-mail addresses or phone
    numbers as the project's pseudonymous keys, unless ``pii`` is ``include``; one note on
    stderr says how many. The key is the secret of the store at ``store_path``, else of the
    project at ``project_dir`` (:func:`project_store`).

    Raises
    ------
    InputError
        When an id needs a key and ``project_dir`` holds no project (naming ``source``, the
        file the ids came from, and the column): give ``--project``, or ``--pii include``.
    """
    from segflow.cli._common import console
    from segflow.exports._pseudonym import id_key, key_file, pseudonym_note, pseudonymise_table

    if pii == "include":
        return table
    n, column = count_personal_ids(table, columns)
    if not n:
        return table
    path = store_path or project_store(project_dir)
    if path is None:
        raise InputError(
            f"{n:,} customer id(s) are e-mail addresses or phone numbers, written as pseudonymous "
            f"keys (pid-...) made with the project's secret key, and {project_dir} holds no "
            "segflow.toml: give --project (the project folder), or --pii include to write the ids "
            "in clear", file=source, column=column)
    keyed, n = pseudonymise_table(table, id_key(path), columns)
    console.print(pseudonym_note(n, key_file(path)), highlight=False, soft_wrap=True, markup=False)
    return keyed


def key_frame(frame: pd.DataFrame, pii: str, project_dir: Path, *, column: str = "customer_id",
              store_path: Path | None = None) -> pd.DataFrame:
    """``frame`` (pandas) with the ids of ``column`` keyed by :func:`key_ids`: a copy when
    some were, else ``frame`` itself."""
    import pyarrow as pa

    if pii == "include" or column not in frame.columns:
        return frame
    ids = pa.Table.from_pandas(frame[[column]], preserve_index=False)
    keyed = key_ids(ids, pii, project_dir, columns=[column], store_path=store_path)
    if keyed is ids:
        return frame
    out = frame.copy()
    out[column] = keyed.column(column).to_pylist()
    return out


def ids_pii_option(where: str) -> Any:
    """The ``--pii`` option of a command writing the store's customer ids (``where``: its
    output, e.g. ``"--out and --json"``): the plain segment list's values and meaning."""
    import typer

    from segflow.cli._common import Choice
    from segflow.cli._export import PII_CHOICES

    return typer.Option(
        "hash", "--pii", parser=Choice(*PII_CHOICES),
        help=f"Customer ids that are (or hold) e-mail addresses or phone numbers in {where}: "
             "written as the project's pseudonymous keys (pid-..., as segflow export writes them; "
             "hash, mask, omit) or in clear (include).")
