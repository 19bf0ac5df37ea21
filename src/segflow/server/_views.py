"""Data shared by each dashboard page and its JSON twin: one function per resource.

Aggregates (schemes, snapshots, segment sizes, transition matrices) are read from the run's
stored aggregates (:mod:`segflow.summaries`) when they describe the copy's assignments
(:func:`stored`), else computed from the assignments and transactions; either way they are
cached per copy of the store (:meth:`Generation.cached`). A customer lookup reads the copy's
memory-mapped lookup files (:mod:`segflow.server._lookup`), other customer-level reads are
plain parameterised SQL on the pooled connection.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import gc
import operator
from typing import Any

import pandas as pd
from fastapi import HTTPException

from segflow._result import json_float, json_records, jsonable
from segflow.errors import SegflowError
from segflow.project import Project
from segflow.server import _lookup, _search
from segflow.server._replica import Generation


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts at full precision (see :func:`segflow._result.json_records`)."""
    return json_records(frame)


def page(frame: pd.DataFrame, limit: int, offset: int) -> pd.DataFrame:
    return frame.iloc[offset : offset + limit].reset_index(drop=True)


def stored(project: Project, gen: Generation) -> bool:
    """Whether the copy's stored aggregates (``summary_*``, :mod:`segflow.summaries`) describe
    its assignments, so that the aggregate routes read them: always on a copy of a Spark
    warehouse (it has no transactions), and on a DuckDB store when the aggregates are those of
    its latest run (:func:`segflow.summaries.summaries_run`; a store whose latest run failed
    to write them, or of a segflow before them, is computed from). Cached per copy."""
    if gen.warehouse:
        return True

    def compute() -> bool:
        from segflow.summaries import summaries_run

        return summaries_run(project.store) is not None

    return gen.cached(("stored",), compute)


#: Where the aggregate routes read the schemes and snapshots: the per-segment aggregates (one
#: row per scheme, snapshot and segment) or the per-snapshot view of the change rows (one row
#: per scheme, snapshot and customer: at 1M customers a scan of 24M rows per scheme).
_DATES_FROM = {True: "summary_segments", False: "segment_assignments"}


def schemes(project: Project, gen: Generation) -> list[dict[str, Any]]:
    def compute() -> list[dict[str, Any]]:
        rows = project.store.raw.execute(
            "SELECT scheme, count(DISTINCT snapshot_date), min(snapshot_date), max(snapshot_date) "
            f"FROM {_DATES_FROM[stored(project, gen)]} GROUP BY scheme ORDER BY scheme"
        ).fetchall()
        return [
            {"scheme": s, "snapshots": n, "first_snapshot": lo, "last_snapshot": hi} for s, n, lo, hi in rows
        ]

    return gen.cached(("schemes",), compute)


def snapshots(project: Project, gen: Generation, scheme: str) -> list[dt.date]:
    if scheme not in {s["scheme"] for s in schemes(project, gen)}:
        # not cached: a cache entry per name asked for let any caller fill the cache (and, at
        # its bound, empty it of the costly aggregates)
        raise HTTPException(status_code=404, detail=f"no assignments stored for scheme {scheme!r}")

    def compute() -> list[dt.date]:
        if not stored(project, gen):
            return project.snapshot_dates(scheme)
        rows = project.store.raw.execute("SELECT DISTINCT snapshot_date FROM summary_segments WHERE scheme = ? "
                                         "ORDER BY 1", [scheme]).fetchall()
        return [r[0] for r in rows]

    dates = gen.cached(("snapshots", scheme), compute)
    if not dates:
        raise HTTPException(status_code=404, detail=f"no assignments stored for scheme {scheme!r}")
    return dates


def _pick(dates: list[dt.date], scheme: str, snapshot: dt.date | None) -> dt.date:
    snapshot = snapshot or dates[-1]
    if snapshot not in dates:
        raise HTTPException(status_code=404, detail=f"scheme {scheme!r} has no snapshot {snapshot}")
    return snapshot


def known_segments(project: Project, gen: Generation, scheme: str) -> frozenset[str]:
    """Every segment ``scheme`` has had at any snapshot (a segment empty now is still one),
    from the run's stored aggregates or the change rows; cached per copy."""
    def compute() -> frozenset[str]:
        if stored(project, gen):
            sql = "SELECT DISTINCT segment FROM summary_segments WHERE scheme = ?"
        elif "segment_spells" in project.store.tables():
            sql = "SELECT DISTINCT segment FROM segment_spells WHERE scheme = ?"
        else:
            sql = "SELECT DISTINCT segment FROM segment_assignments WHERE scheme = ?"
        return frozenset(r[0] for r in project.store.raw.execute(sql, [scheme]).fetchall() if r[0] is not None)

    return gen.cached(("known_segments", scheme), compute)


def segment_snapshot(project: Project, gen: Generation, scheme: str | None, segment: str | None,
                     snapshot: dt.date | None) -> dt.date | None:
    """The snapshot at which ``segment`` of ``scheme`` is selected (default: the latest), the
    one check of a selection by segment (the audiences, the customer search): ``segment``
    or ``snapshot`` without ``scheme`` is a 422 (before, the search dropped them and
    answered every customer); a scheme without assignments, a snapshot it lacks or a segment
    it never had is a 404, the last listing its segments (a typo is no empty selection).
    None when nothing is selected by segment (no ``scheme``)."""
    if not scheme:
        given = [name for name, value in (("segment", segment), ("snapshot", snapshot)) if value]
        if given:
            raise HTTPException(status_code=422, detail=f"{' and '.join(given)} need"
                                f"{'s' if len(given) == 1 else ''} scheme: segments and snapshots are a scheme's")
        return None
    snapshot = _pick(snapshots(project, gen, scheme), scheme, snapshot)
    if segment:
        known = known_segments(project, gen, scheme)
        if segment not in known:
            shown = ", ".join(sorted(known)[:30]) + (", ..." if len(known) > 30 else "")
            raise HTTPException(status_code=404, detail=f"scheme {scheme!r} has no segment {segment!r}; "
                                f"its segments: {shown}")
    return snapshot


def snapshot_pair(dates: list[dt.date], scheme: str, from_date: dt.date | None,
                  to_date: dt.date | None) -> tuple[dt.date, dt.date]:
    """The two snapshots a migration compares, the one check of the matrix, its cells and
    their pages: the library's rule (:func:`segflow.migration._transitions.snapshot_pair`,
    as :meth:`segflow.project.Project.snapshot_pair`) with HTTP statuses. A given date that
    is no snapshot of the scheme, or a scheme of one snapshot, is a 404; a pair out of order,
    or a ``to_date`` that is the first snapshot without ``from_date``, a 400."""
    from segflow.migration._transitions import snapshot_pair as pair_of

    if len(dates) >= 2:  # else the rule's own error, whatever the dates given
        to_date = None if to_date is None else _pick(dates, scheme, to_date)
        from_date = None if from_date is None else _pick(dates, scheme, from_date)
    try:
        return pair_of(dates, scheme, from_date, to_date)
    except SegflowError as exc:
        raise HTTPException(status_code=404 if len(dates) < 2 else 400, detail=str(exc)) from None


def segment_sizes(project: Project, gen: Generation, scheme: str, snapshot: dt.date | None) -> tuple[pd.DataFrame, dt.date]:
    """Sizes at ``snapshot`` with ``change_customers`` since the previous snapshot. A segment
    of the previous snapshot that has no customer now is listed with 0 customers, share
    and revenue and its (negative) change, after the others: before, a segment that emptied
    vanished from the table with the size of its fall."""
    dates = snapshots(project, gen, scheme)
    snapshot = _pick(dates, scheme, snapshot)

    def sizes(day: dt.date) -> pd.DataFrame:
        if stored(project, gen):  # the run's aggregates (a Spark warehouse's copy has only those)
            from segflow.summaries import segment_table

            return segment_table(project.store, scheme, day).drop(columns="revenue_all_time")
        return project.segment_sizes(scheme, day)

    def compute() -> pd.DataFrame:
        frame = sizes(snapshot)
        i = dates.index(snapshot)
        if i > 0:
            previous = sizes(dates[i - 1])
            gone = previous[~previous["segment"].isin(frame["segment"])]
            if len(gone):
                empty = gone[["segment", *(["segment_rank"] if "segment_rank" in gone else [])]].copy()
                for col in frame.columns.difference(empty.columns):
                    empty[col] = 0 if pd.api.types.is_numeric_dtype(frame[col]) else None
                frame = pd.concat([frame, empty[frame.columns].astype(frame.dtypes.to_dict())],
                                  ignore_index=True)
            before = previous.set_index("segment")["customers"]
            frame["change_customers"] = (
                frame["customers"] - frame["segment"].map(before).fillna(0)
            ).astype("int64")
            frame["previous_snapshot"] = dates[i - 1]
        return frame

    return gen.cached(("sizes", scheme, snapshot), compute).copy(), snapshot


def transitions(project: Project, gen: Generation, scheme: str, from_date: dt.date | None, to_date: dt.date | None) -> Any:
    """The transition matrix of ``scheme`` between two snapshots (:func:`snapshot_pair`:
    default ``to_date`` the latest, ``from_date`` the snapshot before it), cached per copy."""
    from_date, to_date = snapshot_pair(snapshots(project, gen, scheme), scheme, from_date, to_date)

    def compute() -> Any:
        if stored(project, gen):  # the run's cells: consecutive snapshots, any snapshot with the latest
            from segflow.summaries import transition_table

            try:
                return transition_table(project.store, scheme, from_date, to_date)
            except SegflowError as exc:
                if gen.warehouse:  # no transactions to compute another pair from
                    raise HTTPException(status_code=404, detail=f"{exc}: served from a Spark warehouse, "
                                        "only the stored pairs (consecutive snapshots, any snapshot with "
                                        "the latest) are available") from exc
        try:  # another pair of snapshots (or no current aggregates): computed
            return project.transitions(scheme, from_date, to_date)
        except SegflowError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc

    return gen.cached(("transitions", scheme, from_date, to_date), compute)


def cell_customers(project: Project, gen: Generation, scheme: str, from_date: dt.date | None,
                   to_date: dt.date | None, from_segment: str,
                   to_segment: str) -> tuple[pd.DataFrame, dt.date, dt.date]:
    """Customers who moved ``from_segment`` -> ``to_segment`` between the two snapshots,
    with the two snapshots compared; ``(new)`` / ``(gone)`` stand for customers absent at
    one side (as in the matrix). The dates are checked and defaulted as the matrix's
    (:func:`snapshot_pair`: before, a reversed pair answered the cell of the pair read
    backwards, and both dates were required)."""
    from_date, to_date = snapshot_pair(snapshots(project, gen, scheme), scheme, from_date, to_date)
    frame = project.store.raw.execute(
        """
        WITH a AS (SELECT customer_id, segment FROM segment_assignments WHERE scheme = ? AND snapshot_date = ?),
             b AS (SELECT customer_id, segment FROM segment_assignments WHERE scheme = ? AND snapshot_date = ?)
        SELECT coalesce(a.customer_id, b.customer_id) AS customer_id,
               coalesce(a.segment, '(new)') AS from_segment, coalesce(b.segment, '(gone)') AS to_segment
        FROM a FULL OUTER JOIN b ON a.customer_id = b.customer_id
        WHERE coalesce(a.segment, '(new)') = ? AND coalesce(b.segment, '(gone)') = ?
        ORDER BY customer_id
        """,
        [scheme, from_date, scheme, to_date, from_segment, to_segment],
    ).df()
    return frame, from_date, to_date


def _columns(project: Project, table: str) -> list[str]:
    rows = project.store.raw.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


#: Columns of the ``customers`` table a search answers with (those the store has).
SEARCH_COLUMNS = ("email", "phone", "name", "region", "created_at")


def _tables(project: Project) -> set[str]:
    return {r[0] for r in project.store.raw.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def recordless(project: Project, gen: Generation | None = None) -> bool:
    """Whether the run knows customers the ``customers`` table has no record of: ids in
    ``customer_features`` (every customer known at the latest snapshot, by a record or by a
    transaction: :func:`segflow.features.customer_features`) missing from ``customers``, as
    in a project with only a transactions source, or guests who never signed up. Cached per
    copy (one anti-join), so a search of a store whose records cover everyone reads
    ``customers`` alone."""

    def compute() -> bool:
        tables = _tables(project)
        if "customer_features" not in tables:
            return False
        if "customers" not in tables:
            return True
        return bool(project.store.raw.execute(
            "SELECT EXISTS (SELECT 1 FROM customer_features f WHERE NOT EXISTS "
            "(SELECT 1 FROM customers r WHERE r.customer_id = f.customer_id))").fetchone()[0])

    return compute() if gen is None else gen.cached(("recordless",), compute)


def _people(project: Project, gen: Generation | None) -> tuple[str, list[str]]:
    """The relation a search reads (SQL) and its columns of :data:`SEARCH_COLUMNS`: the
    ``customers`` table, plus (:func:`recordless`) one row per customer the run knows without
    a record, its columns null."""
    cols = [c for c in SEARCH_COLUMNS if c in _columns(project, "customers")]
    if not recordless(project, gen):
        return "customers", cols
    if "customers" not in _tables(project):
        return "(SELECT customer_id FROM customer_features)", []
    keep = "".join(f", {c}" for c in cols)
    nulls = "".join(f", NULL AS {c}" for c in cols)
    return (f"(SELECT customer_id{keep} FROM customers UNION ALL SELECT f.customer_id{nulls} "
            "FROM customer_features f WHERE NOT EXISTS "
            "(SELECT 1 FROM customers r WHERE r.customer_id = f.customer_id))"), cols


def search_customers(project: Project, q: str | None, scheme: str | None, segment: str | None,
                     snapshot: dt.date | None, limit: int, offset: int,
                     gen: Generation) -> tuple[pd.DataFrame, int]:
    """Customers by id prefix, e-mail (equal once trimmed and lower-cased as the exports hash
    it: :mod:`segflow.server._search`) or name part, and/or by segment at a snapshot; returns
    a page and the total count. Every customer the run knows is found, also one without a
    record in ``customers`` (by id and segment; its personal columns empty: :func:`_people`). ``gen``: the copy, whose cached snapshot dates and
    segments are used. ``segment`` and ``snapshot`` are checked by :func:`segment_snapshot`
    (they need ``scheme``; an unknown scheme, segment or snapshot is a 404)."""
    snapshot = segment_snapshot(project, gen, scheme, segment, snapshot)
    where, params = [], []
    people, cols = _people(project, gen)
    select = ["c.customer_id"] + [f"c.{c}" for c in cols]
    q = q.strip() if q else q  # ids are stored trimmed: " C001 " (pasted) is C001's prefix too
    if q:
        ors = ["c.customer_id LIKE ? ESCAPE '\\'"]
        params.append(q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if "email" in cols:  # the exports' normalisation on both sides (segflow.server._search)
            ors.append(f"c.customer_id IN (SELECT customer_id FROM {_search.EMAIL_KEYS} WHERE email_key = ?)")
            params.append(_search.email_key(q))
        if "name" in cols:
            ors.append("c.name ILIKE ?")
            params.append(f"%{q}%")
        where.append("(" + " OR ".join(ors) + ")")
    join = ""
    if scheme:
        join = "JOIN segment_assignments s ON s.customer_id = c.customer_id AND s.scheme = ? AND s.snapshot_date = ?"
        params = [scheme, snapshot, *params]
        select.append("s.segment")
        if segment:
            where.append("s.segment = ?")
            params.append(segment)
    sql_where = ("WHERE " + " AND ".join(where)) if where else ""
    base = f"FROM {people} c {join} {sql_where}"
    total = int(project.store.raw.execute(f"SELECT count(*) {base}", params).fetchone()[0])
    frame = project.store.raw.execute(
        f"SELECT {', '.join(select)} {base} ORDER BY c.customer_id LIMIT ? OFFSET ?", [*params, limit, offset]
    ).df()
    return frame, total


def _spell_snapshots(project: Project, gen: Generation | None) -> dict[str, list[dt.date]] | None:
    """Computed snapshots per scheme (``segment_snapshots``, duplicates kept as the view keeps
    them), cached per copy; None on a store without spells (schema < 5)."""

    def compute() -> dict[str, list[dt.date]] | None:
        raw = project.store.raw
        present = raw.execute("SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                              "('segment_spells', 'segment_snapshots') AND table_type = 'BASE TABLE'").fetchone()[0]
        if present < 2:
            return None
        out: dict[str, list[dt.date]] = {}
        for scheme, date in raw.execute("SELECT scheme, snapshot_date FROM segment_snapshots ORDER BY 1, 2").fetchall():
            out.setdefault(scheme, []).append(date)
        return out

    return compute() if gen is None else gen.cached(("spell_snapshots",), compute)


_SCHEME_DATE = operator.itemgetter(0, 1)


def _expand_spells(spells: list[tuple[Any, ...]], snapshots: dict[str, list[dt.date]]) -> list[tuple[Any, ...]]:
    """(scheme, segment, valid_from, valid_to) spells -> sorted (scheme, snapshot_date, segment)
    at every computed snapshot the spell covers (what the view ``segment_assignments`` holds).
    ``snapshots``: the computed snapshot dates of each scheme, sorted."""
    rows: list[tuple[Any, ...]] = []
    for scheme, segment, start, end in spells:
        dates = snapshots.get(scheme, ())  # sorted: the spell covers a slice of them
        first = bisect.bisect_left(dates, start)
        stop = len(dates) if end is None else bisect.bisect_left(dates, end, first)
        rows.extend((scheme, d, segment) for d in dates[first:stop])
    rows.sort(key=_SCHEME_DATE)
    return rows


def _history_rows(project: Project, gen: Generation | None, customer_id: str) -> list[tuple[Any, ...]]:
    """A customer's (scheme, snapshot_date, segment) at every computed snapshot of every
    scheme, sorted: the rows of the view ``segment_assignments`` for one customer, expanded
    from the customer's spells (an index lookup on the copy) in Python, instead of asking the
    engine to plan the view's range join (see docs/server.md, "Customer lookup")."""
    raw = project.store.raw
    snapshots = _spell_snapshots(project, gen)
    if snapshots is None:  # a store of schema < 5: the per-snapshot table itself
        return raw.execute("SELECT scheme, snapshot_date, segment FROM segment_assignments WHERE customer_id = ? "
                           "ORDER BY scheme, snapshot_date", [customer_id]).fetchall()
    spells = raw.execute("SELECT scheme, segment, valid_from, valid_to FROM segment_spells WHERE customer_id = ?",
                         [customer_id]).fetchall()
    return _expand_spells(spells, snapshots)


HISTORY_COLUMNS = ["scheme", "snapshot_date", "segment"]


def _history(project: Project, gen: Generation | None, customer_id: str) -> pd.DataFrame:
    return pd.DataFrame(_history_rows(project, gen, customer_id), columns=HISTORY_COLUMNS)


Rows = tuple[list[str], list[tuple[Any, ...]]]


def customer_rows_indexed(gen: Generation | None, customer_id: str) -> dict[str, Rows] | None:
    """:func:`customer_rows` from the copy's memory-mapped lookup files (no query, no store
    connection: :mod:`segflow.server._lookup`), or None when the copy has none."""
    index = getattr(gen, "lookup", None)
    if index is None:
        return None
    k = index.position(customer_id)
    history = _expand_spells(index.rows("spells", k)[1], index.snapshots) if k is not None else []
    attributes = index.rows("attributes", k) if "attributes" in index else ([], [])
    attributes = (attributes[0], attributes[1][:1])
    features = index.rows("features", k) if "features" in index else ([], [])
    if not history and not attributes[1] and not features[1]:
        raise HTTPException(status_code=404, detail=f"no customer {customer_id!r}")
    scores = index.rows("scores", k) if "scores" in index else (["snapshot_date", "model", "score", "value"], [])
    return {"history": (HISTORY_COLUMNS, history), "attributes": attributes, "scores": scores, "features": features}


def customer_rows(project: Project, customer_id: str, gen: Generation | None = None) -> dict[str, Rows]:
    """:func:`customer_detail` as (columns, rows) per part, without pandas (the JSON route
    formats them directly). From the copy's lookup files when it has them
    (:func:`customer_rows_indexed`), else a handful of index reads in DuckDB."""
    indexed = customer_rows_indexed(gen, customer_id)
    if indexed is not None:
        return indexed
    raw = project.store.raw

    def parts() -> dict[str, tuple[str, str, str]]:
        return _lookup.part_sql(raw)

    sql = parts() if gen is None else gen.cached(("lookup_parts",), parts)

    def rows(part: str, limit: int | None = None) -> Rows:
        if part not in sql:
            return [], []
        cursor = raw.execute(_lookup.lookup_sql(*sql[part], limit=limit), [customer_id])
        return [d[0] for d in cursor.description], cursor.fetchall()

    history = _history_rows(project, gen, customer_id)
    attributes = rows("attributes", limit=1)
    features = rows("features")
    if not history and not attributes[1] and not features[1]:
        raise HTTPException(status_code=404, detail=f"no customer {customer_id!r}")
    scores = rows("scores")
    if not scores[0]:
        scores = (["snapshot_date", "model", "score", "value"], [])
    return {"history": (HISTORY_COLUMNS, history), "attributes": attributes, "scores": scores,
            "features": features}


def customer_detail(project: Project, customer_id: str, gen: Generation | None = None) -> dict[str, Any]:
    """Attributes, segment history per scheme, scores and latest features of a customer
    (point lookups on the copy's ``customer_id`` indexes; ``gen``: the copy, for its cache),
    as DataFrames (the dashboard page)."""
    parts = customer_rows(project, customer_id, gen)
    out = {name: pd.DataFrame(rows, columns=columns) for name, (columns, rows) in parts.items()}
    if not parts["features"][0]:
        out["features"] = pd.DataFrame()
    return out


def _json_value(value: Any) -> Any:
    """:func:`segflow._result.jsonable` of one value, with the Python types a database row
    holds (None, str, bool, int, float, date, datetime) taken first (a lookup formats a few
    hundred values: the general function's checks cost more than the formatting). Dates and
    datetimes are left as they are: orjson writes them as :func:`segflow._result.json_date`
    does (ISO 8601, no time zone, microseconds only when present)."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int or kind is dt.date or kind is dt.datetime:
        return value
    if kind is float:
        return json_float(value)
    return jsonable(value)


#: Types orjson writes as :func:`segflow._result.jsonable` would (dates: ISO 8601).
_READY = frozenset({str, int, bool, type(None), dt.date})


def _midnight(value: Any) -> bool:
    return value.hour == value.minute == value.second == value.microsecond == 0


def fast_records(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """:func:`records` of ``pd.DataFrame(rows, columns=columns)`` without building it, for
    ``orjson.dumps``: a column of timestamps all at midnight is written as dates, floats by
    :func:`segflow._result.json_float` (15 significant digits, NaN as null), dates and other
    timestamps left to orjson (ISO 8601), anything else by :func:`segflow._result.jsonable`.
    Works column by column (text, integer and date columns are taken as they are); one row
    value by value."""
    if not rows:
        return []
    names = [str(c) for c in columns]
    if len(rows) == 1:
        return [{n: v.date() if isinstance(v, dt.datetime) and _midnight(v) else _json_value(v)
                 for n, v in zip(names, rows[0], strict=True)}]
    out_columns: list[Any] = []
    for values in zip(*rows, strict=True):
        kinds = set(map(type, values))
        if kinds <= _READY:
            out_columns.append(values)
            continue
        kinds.discard(type(None))
        present = [v for v in values if v is not None]
        if all(isinstance(v, dt.datetime) for v in present) and all(map(_midnight, present)):
            values = tuple(None if v is None else v.date() for v in values)
        elif kinds == {dt.datetime}:
            out_columns.append(values)
            continue
        out_columns.append([_json_value(v) for v in values])
    return [dict(zip(names, r, strict=True)) for r in zip(*out_columns, strict=True)]


def _plain_history(history: list[tuple[Any, ...]]) -> bool:
    """Whether every (scheme, snapshot_date, segment) row holds text and a ``date``."""
    return all(type(d) is dt.date and type(s) is str and (g is None or type(g) is str) for s, d, g in history)


def history_records(history: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """``fast_records(HISTORY_COLUMNS, history)``, built directly for rows of text and dates
    (a dict display is ten times faster than ``dict(zip(...))``; a customer has a row per
    scheme and snapshot)."""
    if not _plain_history(history):
        return fast_records(HISTORY_COLUMNS, history)
    return [{"scheme": s, "snapshot_date": d, "segment": g} for s, d, g in history]


def fast_timeline(history: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """:func:`timeline` of sorted (scheme, snapshot_date, segment) rows, as JSON records."""
    spells: list[list[Any]] = []
    for scheme, date, segment in history:
        if spells and spells[-1][0] == scheme and spells[-1][1] == segment:
            spells[-1][3] = date
        else:
            spells.append([scheme, segment, date, date])
    if not _plain_history(history):
        return fast_records(["scheme", "segment", "from_snapshot", "to_snapshot"], [tuple(s) for s in spells])
    return [{"scheme": s, "segment": g, "from_snapshot": a, "to_snapshot": b} for s, g, a, b in spells]


def timeline(history: pd.DataFrame) -> pd.DataFrame:
    """Segment history compressed to spells: one row per scheme and run of equal segments."""
    rows = []
    for scheme, group in history.sort_values(["scheme", "snapshot_date"]).groupby("scheme", sort=True):
        current, start, end = None, None, None
        for date, segment in zip(group["snapshot_date"], group["segment"], strict=True):
            if segment != current:
                if current is not None:
                    rows.append((scheme, current, start, end))
                current, start = segment, date
            end = date
        rows.append((scheme, current, start, end))
    return pd.DataFrame(rows, columns=["scheme", "segment", "from_snapshot", "to_snapshot"])


def warm(gen: Generation) -> None:
    """Precompute what the first pages show, on a new copy before it is served: schemes,
    snapshots, latest segment sizes and the latest transition matrix of every scheme, and
    the scorer of the latest snapshot (compiled SQL, fitted models)."""
    project = gen.pool.get()
    try:
        from segflow.server.routes.score import scorer_for

        with contextlib.suppress(Exception):  # a store without features: /score answers 409
            scorer_for(project, gen, None)
        for s in schemes(project, gen):
            segment_sizes(project, gen, s["scheme"], None)
            if s["snapshots"] >= 2:
                transitions(project, gen, s["scheme"], None, None)
    finally:
        gen.pool.put(project)
    # What is alive now (modules, the scorer, cached aggregates) lives as long as the copy:
    # kept out of the garbage collector's generations, collections look at requests' objects
    # only (docs/server.md, "Hot paths"). The previous copy's frozen objects are released
    # first (unfreeze, one full collection), so a refresh does not keep its cycles alive.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
