"""Targeting: audiences from rules over segments and scores, with a random hold-out control
sample, suggested actions from the playbook, and safe CSV/Parquet export: personal columns
under the exports' policy (hashed unless asked otherwise), formulas neutralised in CSV
(Parquet keeps every value as it is).

Rules are filters on a customer-level table: the store's :func:`customer_view` (one column
per scheme, one per stored score) or any table you bring (e.g. customers scored with an
uplift model). A rule is a SQL boolean expression over that table's columns (``where``), an
Ibis predicate (``rule``), or lists of segments per scheme (``segments``); all given are
combined with AND.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis import _

from segflow._csv import neutralise_formulas as neutralise_arrow
from segflow._csv import to_arrow, write_csv
from segflow._result import TableResult
from segflow._rows import as_numbers, check_one_row_per_id_frame
from segflow.campaigns._playbook import Playbook, load_playbook
from segflow.campaigns._store import TableSource
from segflow.config._schemes import column_name  # noqa: F401 - part of this module's API
from segflow.errors import InputError
from segflow.exports._pii import check_policy, is_personal, protect_columns

if TYPE_CHECKING:
    import plotly.graph_objects as go



def customer_view(
    source: TableSource,
    snapshot: dt.date | None = None,
    *,
    schemes: Sequence[str] | None = None,
    scores: Sequence[tuple[str, str]] | None = None,
) -> ibis.Table:
    """One row per customer at ``snapshot``: their segment in each scheme and their scores.

    Parameters
    ----------
    source : Store or Engine
    snapshot : datetime.date, optional
        Default: the latest snapshot with segment assignments.
    schemes : sequence of str, optional
        Schemes to include (default: every scheme assigned at the snapshot). Column name:
        :func:`column_name` of the scheme (e.g. ``rfm``), plus ``<scheme>__rank``.
    scores : sequence of (model, score), optional
        Scores from ``customer_scores`` at the snapshot (default: all). Column name:
        ``<model>__<score>`` (e.g. ``churn_90d__churn_probability``).

    Returns
    -------
    ibis.Table
        ``customer_id`` plus the columns above; customers with assignments in at least one
        of the schemes. A missing score is NULL.
    """
    a = source.table("segment_assignments")
    if snapshot is None:
        snapshot = a.snapshot_date.max().to_pandas()
        if snapshot is None or pd.isna(snapshot):
            raise InputError("the store has no segment assignments; run `segflow run` first")
        snapshot = pd.Timestamp(snapshot).date()
    a = a.filter(a.snapshot_date == snapshot)
    if schemes is None:
        schemes = sorted(a.select("scheme").distinct().to_pandas()["scheme"].tolist())
    if not schemes:
        raise InputError(f"no segment assignments at snapshot {snapshot}")
    a = a.filter(a.scheme.isin(list(schemes)))
    metrics: dict[str, Any] = {}
    for s in schemes:
        metrics[column_name(s)] = _.segment.max(where=_.scheme == s)
        metrics[column_name(s, "rank")] = _.segment_rank.min(where=_.scheme == s)
    view = a.group_by("customer_id").agg(**metrics)
    sc = source.table("customer_scores")
    sc = sc.filter(sc.snapshot_date == snapshot)
    if scores is None:
        pairs = sc.select("model", "score").distinct().to_pandas()
        scores = sorted(zip(pairs.model, pairs.score, strict=True))
        if not scores:
            other = source.table("customer_scores").snapshot_date.max().to_pandas()
            if other is not None and not pd.isna(other):
                warnings.warn(
                    f"no customer scores at snapshot {snapshot} (the latest scores are at "
                    f"{pd.Timestamp(other).date()}); the view has segments only",
                    UserWarning,
                    stacklevel=2,
                )
    if scores:
        smetrics = {
            column_name(m, s): _.value.max(where=(_.model == m) & (_.score == s)) for m, s in scores
        }
        wide = sc.group_by("customer_id").agg(**smetrics)
        view = view.left_join(wide, "customer_id").drop("customer_id_right")
    return view


class Audience(TableResult):
    """A target list: customers chosen by a rule, split into target and hold-out.

    Attributes
    ----------
    members : pandas.DataFrame
        ``customer_id``, ``group`` (``"target"`` or ``"holdout"``), the rule's input
        columns (personal ones under ``pii``), ``expected_value`` (the ``value`` column, if
        given), and the playbook's ``action``, ``goal``, ``suggestion`` (if ``action_from``
        was given).
    name, rule : str
    holdout, seed
        The hold-out share and the random seed that drew it.
    pii : str
        The personal-data policy the members' personal columns are under (see
        :func:`build_audience`).
    """

    def __init__(self, members: pd.DataFrame, *, name: str, rule: str, holdout: float,
                 seed: int, value: str | None, action_from: str | None,
                 pii: str = "hash") -> None:
        self.members = members
        self.name = name
        self.rule = rule
        self.holdout = holdout
        self.seed = seed
        self.value = value
        self.action_from = action_from
        self.pii = pii

    def to_pandas(self) -> pd.DataFrame:
        return self.members.copy()

    def summary(self) -> dict[str, Any]:
        """Size, target and hold-out counts, expected value (total and mean per customer)."""
        m = self.members
        out: dict[str, Any] = {
            "name": self.name, "rule": self.rule, "size": len(m),
            "target": int((m.group == "target").sum()), "holdout": int((m.group == "holdout").sum()),
            "holdout_share": self.holdout, "seed": self.seed, "value": self.value,
            "pii": self.pii,
        }
        if self.value is not None and len(m):
            ev = m["expected_value"].astype(float)
            out.update(expected_value_total=float(ev.sum()), expected_value_mean=float(ev.mean()),
                       expected_value_missing=int(ev.isna().sum()))
        if self.action_from is not None:
            out["actions"] = m.groupby("action").size().astype(int).to_dict()
        return out

    def by_segment(self, column: str | None = None) -> pd.DataFrame:
        """Counts (and expected value) per segment of ``column`` (default: ``action_from``)."""
        column = column or self.action_from
        if column is None or column not in self.members:
            raise InputError(f"no segment column {column!r} in the audience")
        g = self.members.groupby([column, "group"]).size().unstack(fill_value=0)
        if self.value is not None:
            g["expected_value"] = self.members.groupby(column)["expected_value"].sum()
        return g.reset_index()

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), **super().to_dict()}

    def export(self, path: str | Path, *, fmt: str | None = None) -> Path:
        """Write the members to CSV or Parquet (by extension or ``fmt``): their personal
        columns as :func:`build_audience` put them under its ``pii`` policy (hashed by
        default); in CSV, text that a spreadsheet would read as a formula is neutralised,
        in Parquet every value is kept as it is (see :func:`export_table`)."""
        return export_table(self.members, path, fmt=fmt, private=self.pii == "include")

    def figure(self) -> go.Figure:
        """Bars of audience size per action (or per group)."""
        import plotly.graph_objects as go

        col = "action" if self.action_from is not None else "group"
        counts = self.members.groupby([col, "group"]).size().unstack(fill_value=0)
        fig = go.Figure()
        for grp in counts.columns:
            fig.add_bar(name=str(grp), x=counts.index.astype(str), y=counts[grp])
        fig.update_layout(title=f"Audience {self.name}: {len(self.members)} customers",
                          barmode="stack", yaxis_title="customers", height=360)
        return fig

    def __repr__(self) -> str:
        s = self.summary()
        return f"Audience({self.name!r}, size={s['size']}, target={s['target']}, holdout={s['holdout']})"


def build_audience(
    customers: ibis.Table | pd.DataFrame,
    *,
    where: str | None = None,
    rule: Callable[[ibis.Table], Any] | None = None,
    segments: Mapping[str, Sequence[str]] | None = None,
    value: str | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    playbook: Playbook | str | Path | None = None,
    action_from: str | None = None,
    name: str = "audience",
    segment_names: Mapping[str, Collection[str]] | None = None,
    pii: str = "hash",
    source: str | None = None,
) -> Audience:
    """Select an audience, draw a random hold-out, and attach suggested actions.

    Parameters
    ----------
    customers : ibis.Table or pandas.DataFrame
        One row per customer with a ``customer_id`` column (e.g. :func:`customer_view`);
        an id on several rows or a row without an id is an ``InputError`` (a frame's: naming
        its rows, positions from 1; a table's: among the customers selected, naming the ids).
    where : str, optional
        SQL boolean expression over the columns, e.g.
        ``"rfm IN ('At risk', 'Can''t lose them') AND clv__clv_12m > 200"``.
    rule : callable, optional
        ``rule(table) -> boolean column`` (an Ibis predicate).
    segments : mapping, optional
        ``{column: [segment names]}``: keep customers in any of the names, per column.
    value : str, optional
        Column holding each customer's expected value (CLV, expected lift x margin...);
        summed into the audience's expected value.
    holdout : float, default=0.1
        Share of the audience held out as a random control (not to be contacted); exactly
        ``round(holdout * size)`` customers.
    seed : int, default=0
        Seed of the hold-out draw: the same audience and seed give the same hold-out.
    playbook : Playbook or path, optional
        Playbook for suggested actions (default: the bundled one).
    action_from : str, optional
        The segment column whose names are looked up in the playbook.
    name : str, default="audience"
    segment_names : mapping, optional
        ``{column: names}``: the segments each column of ``segments`` may name (e.g.
        :func:`known_segments`: every segment the scheme has assigned, also those empty at
        this snapshot); default: the names some customer of ``customers`` holds.
    pii : {"hash", "mask", "omit", "include"}, default="hash"
        Policy for the personal columns of ``customers`` (named as
        :data:`segflow.exports.PII_COLUMNS`, in any case: ``email``, ``phone``, ``name``,
        ``postcode``...) in the members, as the exports apply it
        (:func:`segflow.exports.protect_columns`): ``email`` hashed becomes ``email_sha256``.
        The rules (``where``, ``rule``, ``segments``) see the values in clear; the members,
        and so the exported file, hold them in clear only with ``include``.
    source : str, optional
        The file ``customers`` was read from: errors about its columns name it.

    Returns
    -------
    Audience
    """
    if not 0.0 <= holdout < 1.0:
        raise InputError(f"the hold-out share must be in [0, 1), not {holdout}")
    pii = check_policy(pii)
    frame = customers if isinstance(customers, pd.DataFrame) else None
    if frame is not None:  # bind to an in-memory DuckDB (SQL rules need one)
        from segflow._frames import engine_ready
        from segflow.store import interruptible

        frame = engine_ready(frame)  # (ids beyond 64 bits raised OverflowError: text, as in the store)
        customers = interruptible(ibis.duckdb.connect()).create_table("customers", frame, temp=True)
    t = customers
    cols = set(t.columns)
    header = 0 if source is not None else None  # a column a file lacks: its header row
    for c in [value, action_from, *(segments or {})]:
        if c is not None and c not in cols:
            raise InputError(f"column not found; columns are: {', '.join(t.columns)}",
                             file=source, row=header, column=c)
    if "customer_id" not in cols:
        raise InputError("the customer table needs a customer_id column", file=source,
                         row=header, column="customer_id")
    # one row per customer (as the CLI checks a file): a repeated id was in the target and
    # in its hold-out; a row without an id is nobody's. A frame's rows are its positions; a
    # table's members are checked once read (below): a query of the whole table cost 1.3-2.1
    # s of build_audience's 9-11 s on a 1M-customer customer_view. No rows: an empty audience
    if frame is not None:
        check_one_row_per_id_frame(frame.reset_index(drop=True), "customer_id", source, empty_ok=True)
    if value is not None:  # summed as numbers: text that is no number is named, row by row
        as_numbers(customers, value, source=source, what=f"the value column {value!r}")
    if pii != "include":  # read from the members, where a personal column is no longer clear
        for c in [value, action_from]:
            if c is not None and is_personal(c):
                raise InputError(f"{c!r} holds personal data (written under the {pii!r} policy); "
                                 "it cannot be the value or action column", file=source, column=c)
    parts = []
    for col, names in (segments or {}).items():
        _check_segment_names(customers, col, names, (segment_names or {}).get(col), source)
        t = t.filter(t[col].isin([str(n) for n in names]))
        parts.append(f"{col} in {list(names)}")
    if rule is not None:
        t = t.filter(rule(t))
        parts.append("rule(...)")
    if where:
        t = _apply_where(t, where, source)
        parts.append(where)
    # personal columns under the policy in the engine, before pandas (an integer phone
    # number with a missing value would be a float there)
    # Arrow-backed columns keep each value as it came: a whole number with a missing value is
    # not a float (447946000001, not 4.47946000001e+11), a date not a timestamp
    members = (protect_columns(t, pii, source=source).order_by("customer_id").to_pyarrow()
               .to_pandas(types_mapper=pd.ArrowDtype))
    if frame is None:  # sorted by id: its positions are no rows of the input
        check_one_row_per_id_frame(members, "customer_id", source, empty_ok=True, name_rows=False)
    members.insert(1, "group", _holdout_groups(len(members), holdout, seed))
    if value is not None:
        members["expected_value"] = members[value].astype(float)
    if action_from is not None:
        pb = playbook if isinstance(playbook, Playbook) else load_playbook(playbook)
        members = pd.concat([members, pb.suggest(members[action_from])], axis=1)
    return Audience(members, name=name, rule=" AND ".join(parts) or "(everyone)",
                    holdout=holdout, seed=seed, value=value, action_from=action_from, pii=pii)


def known_segments(source: TableSource) -> dict[str, set[str]]:
    """Every segment name each scheme has assigned at any snapshot (``segment_spells``), by
    the scheme's column in :func:`customer_view` (:func:`column_name`): the names an audience
    may ask for (:func:`build_audience`'s ``segment_names``)."""
    rows = source.table("segment_spells").select("scheme", "segment").distinct().to_pyarrow()
    out: dict[str, set[str]] = {}
    for scheme, segment in zip(rows["scheme"].to_pylist(), rows["segment"].to_pylist(), strict=True):
        if segment is not None:
            out.setdefault(column_name(scheme), set()).add(segment)
    return out


def _check_segment_names(t: ibis.Table, col: str, names: Sequence[str],
                         allowed: Collection[str] | None, source: str | None = None) -> None:
    """Raise InputError for a name of ``names`` that is not a segment of column ``col`` (a
    typo would otherwise give an empty audience without a word)."""
    if allowed is None:
        allowed = {str(v) for v in t.select(col).distinct().to_pyarrow()[col].to_pylist()
                   if v is not None}
    for name in names:
        if str(name) not in allowed:
            near = [a for a in sorted(allowed) if a.lower() == str(name).lower()]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InputError(f"no segment {str(name)!r}{hint}; its segments are: "
                             f"{', '.join(sorted(allowed)) or '(none)'}", file=source, column=col)


def _apply_where(t: ibis.Table, where: str, source: str | None = None) -> ibis.Table:
    """``t`` filtered by the SQL condition ``where``; an error names ``source`` (the file)."""
    if ";" in where:  # the parser's own message about a second statement means nothing here
        raise InputError(f"cannot use the rule {where!r}: a rule is one condition, without ';' "
                         f"(e.g. \"rfm = 'Champions' AND rfm__rank <= 2\"); columns are: "
                         f"{', '.join(t.columns)}", file=source)
    try:
        out = t.alias("customers").sql(f"{_WHERE_PREFIX}{where}")
        out.schema()  # parse and bind now, so a bad rule fails here with a clear message
        return out
    except Exception as exc:  # ibis/sqlglot/backend errors carry the parser's message
        raise InputError(
            f"cannot use the rule {where!r}: {_rule_problem(str(exc))}; columns are: "
            f"{', '.join(t.columns)}", file=source
        ) from exc


#: The query a ``--where`` rule ends (the parser's column numbers count from its start).
_WHERE_PREFIX = "SELECT * FROM customers WHERE "

#: sqlglot's expression classes as the operators a rule writes.
_OPERATORS = {"GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "EQ": "=", "NEQ": "<>",
              "And": "AND", "Or": "OR", "Not": "NOT", "Like": "LIKE", "ILike": "ILIKE",
              "In": "IN", "Between": "BETWEEN", "Add": "+", "Sub": "-", "Mul": "*", "Div": "/",
              "Is": "IS", "Neg": "-"}

#: sqlglot's names of an operator's operands, as a user reads them.
_OPERANDS = {"this": "a value on its left", "expression": "a value on its right",
             "low": "a lower bound (x BETWEEN 1 AND 9)", "high": "an upper bound (x BETWEEN 1 AND 9)"}


def _rule_problem(message: str) -> str:
    """The parser's (sqlglot's) or the engine's message about a rule, in the rule's terms:
    ``Required keyword: 'expression' missing for <class 'sqlglot...GT'>. Line 1, Col: 33.``
    is ``'>' lacks a value on its right``; a column number counts in the rule (``at
    character 3``), not in the query the rule ends."""
    import re

    first = message.splitlines()[0] if message else "not a condition"
    missing = re.search(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>", first)
    if missing:
        operand, cls = missing.groups()
        op = _OPERATORS.get(cls, cls.upper())
        return f"{op!r} lacks {_OPERANDS.get(operand, f'its {operand}')}"
    col = re.search(r"\.? Line \d+, Col: (\d+)\.?", first)
    if col:
        at = max(int(col.group(1)) - len(_WHERE_PREFIX), 1)
        first = f"{first[:col.start()]} at character {at}{first[col.end():]}"
    return first.rstrip(".")


def _holdout_groups(n: int, holdout: float, seed: int) -> np.ndarray:
    """Exactly ``round(holdout * n)`` customers (in customer-id order) drawn at random."""
    k = int(round(holdout * n))
    groups = np.full(n, "target", dtype=object)
    if k:
        groups[np.random.default_rng(seed).choice(n, size=k, replace=False)] = "holdout"
    return groups


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Deprecated: use :func:`segflow.exports.neutralise_formulas` (Arrow tables), or write
    through :func:`segflow.exports.write_csv`, which applies it.

    The frame with text cells a spreadsheet would run as a formula prefixed with ``'``
    (:func:`segflow._csv.formula_cells`); numeric columns unchanged. Kept for one release as a
    thin wrapper over the one implementation (it was a second, pandas one)."""
    warnings.warn("segflow.campaigns.neutralise_formulas is deprecated (after 0.1.0): use "
                  "segflow.exports.neutralise_formulas on an Arrow table, or segflow.exports."
                  "write_csv, which neutralises CSV files", DeprecationWarning, stacklevel=2)
    return neutralise_arrow(to_arrow(frame)).to_pandas()


def export_table(frame: pd.DataFrame | pa.Table, path: str | Path, *,
                 fmt: str | None = None, private: bool = False) -> Path:
    """Write ``frame`` (pandas or Arrow) to CSV or Parquet (by ``fmt`` or the extension).

    CSV goes through :func:`segflow.exports.write_csv`: text cells (and column names) a
    spreadsheet would run as a formula get a leading ``'``; numeric columns are written as
    numbers (``-2`` stays ``-2``). Parquet holds every value as it is (``=evil`` stays
    ``=evil``): it is not opened by spreadsheets, and its readers must get the data back.
    Personal columns are put under a policy before (:func:`segflow.exports.protect_columns`,
    as :func:`build_audience` does).

    Raises
    ------
    InputError
        For a format other than CSV or Parquet (naming the file).
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in ("parquet", "pq") and private:  # personal data in clear: mode 0600
        from segflow._private import private_target

        private_target(path)
    if fmt == "csv":
        write_csv(frame, path, private=private)  # the shared writer neutralises formulas
    elif fmt in ("parquet", "pq") and isinstance(frame, pa.Table):
        import pyarrow.parquet as pq

        pq.write_table(frame, path)  # values as they are: no formula guard outside CSV
    elif fmt in ("parquet", "pq"):
        frame.to_parquet(path, index=False)
    else:
        raise InputError(f"cannot export to {path.name}: use a .csv or .parquet file name",
                         file=str(path))
    return path
