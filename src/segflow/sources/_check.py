"""Dry-run a source mapping on the first rows of its first file: ``segflow sources check``."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from segflow._result import TableResult, json_records
from segflow.config import SourceSettings
from segflow.errors import BinaryFileError, FileSchemaError, InputError
from segflow.sources._discover import discover_files, relative, several_files
from segflow.sources._load import classify
from segflow.sources._readers import Staged, blank_file, refuse_nested, stage
from segflow.sources._validate import Spec, check_timezone, resolve, validate
from segflow.store import CANONICAL_TABLES, interruptible

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


class CheckReport(TableResult):
    """What ingest would do with the first rows of a source (nothing is written).

    Attributes
    ----------
    source : str
        Source name.
    file : str
        The file (or table) checked.
    mapping : dict
        Canonical column -> the source column(s) it comes from.
    counts : dict
        Rows read, accepted, quarantined and duplicate among the checked rows.
    rules : dict
        Quarantine rule -> rows.
    accepted : pandas.DataFrame
        The first accepted rows as canonical columns (``to_pandas()``).
    rejected : pandas.DataFrame
        Every rejected row: row number, rule, column, reason.

    Notes
    -----
    ``unknown_customer`` and the comparison with rows already in the store are not checked
    (no store is opened); the rest of the rules are those of :func:`segflow.sources.ingest`.
    """

    def __init__(self, source: str, file: str, mapping: dict[str, str], counts: dict[str, int],
                 rules: dict[str, int], accepted: pd.DataFrame, rejected: pd.DataFrame) -> None:
        self.source, self.file, self.mapping = source, file, mapping
        self.counts, self.rules, self.accepted, self.rejected = counts, rules, accepted, rejected

    def to_pandas(self) -> pd.DataFrame:
        return self.accepted

    def masked(self) -> CheckReport:
        """This report with its personal data masked, as ``segflow sources check`` prints it
        unless ``--pii include``: the accepted rows' personal columns (``email``,
        ``phone``...: :func:`segflow.exports.is_personal`) by the exports' mask rules
        (:func:`segflow.exports.mask_frame`), and the e-mail addresses and phone numbers in
        their other text (a ``customer_id`` that is an address) and in the rejected rows'
        reasons (``'ann@example.com' is not a date``) by the report's rule for quarantine
        reasons (:func:`segflow.exports._pii_text.mask_personal_text`: ``a***@example.com``,
        ``***23``; dates, amounts and plain ids as they are)."""
        from segflow.exports._pii import mask_frame

        accepted = _mask_text_columns(mask_frame(self.accepted))
        rejected = _mask_text_columns(self.rejected, ("reason",))
        return CheckReport(self.source, self.file, self.mapping, self.counts, self.rules,
                           accepted, rejected)

    def to_dict(self) -> dict[str, Any]:

        return {
            "source": self.source, "file": self.file, "mapping": self.mapping,
            "counts": self.counts, "rules": self.rules,
            "accepted": json_records(self.accepted),
            "rejected": json_records(self.rejected),
        }

    def figure(self) -> go.Figure:
        import plotly.graph_objects as go

        fig = go.Figure(go.Bar(x=list(self.rules), y=list(self.rules.values())))
        fig.update_layout(title=f"Rejected rows by rule: {self.source}", yaxis_title="rows")
        return fig

    def __repr__(self) -> str:
        c = self.counts
        return (f"CheckReport({self.source!r}, {self.file!r}: read={c['rows_read']}, "
                f"accepted={c['rows_accepted']}, quarantined={c['rows_quarantined']}, "
                f"duplicate={c['rows_duplicate']})")


def _mask_text_columns(frame: pd.DataFrame, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with the e-mail addresses and phone numbers in its text
    ``columns`` (default: every column of text, personal ones already masked included, which
    it leaves as they are) masked by :func:`segflow.exports._pii_text.mask_personal_text`."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    from segflow.exports._pii_text import mask_personal_text

    out = frame.copy()
    for c in columns or list(out.columns):
        if c in out.columns and (is_object_dtype(out[c]) or is_string_dtype(out[c])):
            out[c] = [mask_personal_text(v) if isinstance(v, str) else v for v in out[c]]
    return out


def check_source(
    source: SourceSettings, project_dir: str | Path, n: int = 1000, *,
    now: dt.datetime | None = None,
) -> CheckReport:
    """Dry-run ``source`` on the first ``n`` rows of its first file (that has a byte).

    Parameters
    ----------
    source : SourceSettings
        One ``[[sources]]`` entry.
    project_dir : str or Path
        Folder that the source path is relative to.
    n : int, default 1000
        Number of data rows to check.
    now : datetime, optional
        Load time for ``future_date`` (tz-naive UTC); default: now.

    Returns
    -------
    CheckReport
    """
    project_dir = Path(project_dir)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if source.format == "postgres":
        return _check_file(source, None, f"postgres:{source.options.get('table')}", n, now)
    files = discover_files(source, project_dir)
    # the files with bytes (0 bytes: nothing to check), the first that is text: a binary file
    # of a folder is refused alone by the ingest (binary_files = "reject"), so here too
    candidates = [f for f in files if not blank_file(source, f)] or files[:1]
    alone = source.binary_files != "fail" and several_files(source, project_dir)
    for i, path in enumerate(candidates):
        label = relative(path, project_dir)
        try:
            return _check_file(source, path, label, n, now)
        except BinaryFileError as exc:
            if not alone or i == len(candidates) - 1:
                raise
            warnings.warn(f"{label}: {exc.message}; the ingest refuses this file alone "
                          "(binary_files = \"reject\"): checking the next file", stacklevel=2)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def resolve_mapping(con: duckdb.DuckDBPyConnection, source: SourceSettings, path: Path | None,
                    staged: Staged) -> dict[str, Spec]:
    """The column specs of ``source``'s mapping on the staged file ``path``; a mapped column
    holding lists or structures refused. A file's own columns may differ from its folder's
    other files (a month exported without a column, or one renamed): its errors
    are :class:`FileSchemaError` (refused alone, as a binary file is: ``binary_files``;
    :func:`segflow.sources._ingest.no_file_fits` stops the ingest when no file of the source fits)."""
    try:
        specs = resolve(source, staged)
        refuse_nested(con, staged, [s.label for s in specs.values()])
    except InputError as exc:
        if path is None:
            raise
        raise FileSchemaError(exc.message, file=exc.file, row=exc.rows or None,
                              column=exc.column) from exc
    return specs


def _check_file(source: SourceSettings, path: Path | None, label: str, n: int,
                now: dt.datetime) -> CheckReport:
    """:func:`check_source` on one file (``path``; None: the source's database table)."""
    con = interruptible(duckdb.connect())  # Ctrl-C stops its queries (cli._interrupt)
    try:
        check_timezone(con, source)
        staged = stage(con, source, path, label, limit=n)
        specs = resolve_mapping(con, source, path, staged)
        present = validate(con, source, staged, specs, now=now, known_customers=None, out="_v")
        classify(con, source, "_v", present, "_c", against_store=False, mapped=set(specs))
        return _report(con, source, staged, specs, label)
    finally:
        con.close()


def _report(con, source, staged, specs, label) -> CheckReport:
    cols = list(CANONICAL_TABLES[source.table])
    by = dict(con.execute("SELECT _status, count(*) FROM _c GROUP BY 1").fetchall())
    n_rej = con.execute(f"SELECT count(*) FROM {staged.rejects}").fetchone()[0] if staged.rejects else 0
    rules = dict(con.execute(
        "SELECT _rule, count(*) FROM _c WHERE _status = 'quarantined' GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall())
    if n_rej:
        rules["malformed_row"] = n_rej
    counts = {
        "rows_read": sum(by.values()) + n_rej,
        "rows_accepted": by.get("accepted", 0),
        "rows_quarantined": by.get("quarantined", 0) + n_rej,
        "rows_duplicate": by.get("duplicate", 0),
    }
    accepted = con.execute(
        f"SELECT _row AS row_number, {', '.join(f'v_{c} AS {c}' for c in cols)} FROM _c "
        "WHERE _status = 'accepted' ORDER BY _row LIMIT 20").df()
    rejected_sql = ("SELECT _row AS row_number, _rule AS rule, _column AS column_name, "
                    "_reason AS reason FROM _c WHERE _status = 'quarantined'")
    if staged.rejects:
        rejected_sql += (" UNION ALL SELECT _row, 'malformed_row', column_name, reason "
                         f"FROM {staged.rejects}")
    rejected = con.execute(rejected_sql + " ORDER BY 1").df()
    mapping = {c: s.label for c, s in specs.items()}
    return CheckReport(source.name, label, mapping, counts, rules, accepted, rejected)
