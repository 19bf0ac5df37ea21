"""``segflow export``: segment lists and audiences to files or Postgres, full or incremental.

An export has a name (default: the scheme). Every export is logged in the store table
``export_log``; the snapshot of the latest logged export of a name is its **watermark**. An
incremental export (``mode="changes"``) writes only the customers whose segment differs
from the one they had at the watermark (:func:`~segflow.exports.segment_changes`) and then
moves the watermark to the exported snapshot; exporting twice the same snapshot writes no
rows the second time. With no watermark yet, the first incremental export is a full one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from segflow._dates import as_date
from segflow.errors import InputError, SegflowError
from segflow.exports._crm import (
    check_scheme_name,
    crm_segment_list,
    latest_snapshot,
    segment_changes,
)
from segflow.exports._pii import check_policy, personal_columns
from segflow.exports._pseudonym import id_key, pseudonymise_table
from segflow.exports._targets import target_format, write_file, write_postgres
from segflow.exports._webhook import WebhookPolicy, redact_url, send_changes

if TYPE_CHECKING:
    from segflow.campaigns import Audience
    from segflow.store import Store


@dataclasses.dataclass
class ExportResult:
    """What an export wrote: rows, where, the snapshots compared, webhook outcomes."""

    export_id: str
    name: str
    kind: str
    mode: str
    target: str
    format: str
    rows: int
    snapshot_date: dt.date | None
    scheme: str | None = None
    since_snapshot: dt.date | None = None
    pii: str = "hash"
    changes: dict[str, int] = dataclasses.field(default_factory=dict)
    webhooks_delivered: int = 0
    webhooks_failed: int = 0
    #: customer ids written as pseudonymous keys (ids that are e-mails or phone numbers,
    #: under every policy but ``include``: :mod:`segflow.exports._pseudonym`)
    ids_pseudonymised: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def watermark(store: Store, name: str) -> dt.date | None:
    """The snapshot of the latest segment-list export logged under ``name`` (None before
    the first)."""
    return _last_export(store, name)[0]


def _last_export(store: Store, name: str) -> tuple[dt.date | None, str | None, str | None]:
    """(snapshot, assignments digest, export id) of the latest segment-list export of
    ``name``."""
    row = store.raw.execute(
        "SELECT snapshot_date, assignments_digest, export_id FROM export_log WHERE export_name = ? "
        "AND kind = 'segments' ORDER BY exported_at DESC, export_id DESC LIMIT 1",
        [name],
    ).fetchone()
    return (row[0], row[1], row[2]) if row else (None, None, None)


def changes_export_id(since_id: str, scheme: str, day: dt.date) -> str:
    """The id of an incremental export: 12 hex digits of SHA-256 of the id of the export it
    continues (the watermark's), the scheme and the exported snapshot. An export interrupted
    before it was logged (killed, Ctrl-C, a timeout: the watermark did not move) and run again
    gets the same id, so its webhooks carry the same ``Idempotency-Key`` and a receiver drops
    the changes it already had; any export logged since (a new watermark) gives new ids."""
    import hashlib

    return hashlib.sha256(f"{since_id}\x00{scheme}\x00{day.isoformat()}".encode()).hexdigest()[:12]


def assignments_digest(store: Store, scheme: str, snapshot: dt.date) -> str:
    """A fingerprint of who is in which segment of ``scheme`` at ``snapshot``: the number of
    customers and the sum of DuckDB's ``hash`` of each ``(customer_id, segment)``, prefixed
    with the DuckDB version (the function is not promised to stay the same across versions:
    digests of two versions are not compared). Independent of row order and of run ids.
    (MD5 would not depend on the version, but cost 1.2 us a row against 0.3 us: 1 s more per
    export of a million customers.)"""
    import duckdb

    count, total = store.raw.execute(
        "SELECT count(*), coalesce(sum(hash(customer_id, segment)::HUGEINT), 0) "
        "FROM segment_assignments WHERE scheme = ? AND snapshot_date = ?",
        [scheme, snapshot],
    ).fetchone()
    return f"duckdb {duckdb.__version__}:{count}:{total}"


def _comparable(a: str, b: str) -> bool:
    """Whether two digests were made by the same DuckDB version."""
    return a.split(":", 1)[0] == b.split(":", 1)[0]


def export_history(store: Store, name: str | None = None) -> pa.Table:
    """The export log (all exports, or those of ``name``), newest first."""
    query = "SELECT * FROM export_log"
    params: list[Any] = []
    if name is not None:
        query += " WHERE export_name = ?"
        params.append(name)
    return store.sql(query + " ORDER BY exported_at DESC", params)


def _log(store: Store, result: ExportResult, digest: str | None = None) -> None:
    with store.transaction() as con:
        con.execute(
            "INSERT INTO export_log (export_id, export_name, kind, scheme, snapshot_date, "
            "since_snapshot, mode, target, format, pii, rows_written, exported_at, "
            "assignments_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [result.export_id, result.name, result.kind, result.scheme, result.snapshot_date, result.since_snapshot, result.mode,
             result.target, result.format, result.pii, result.rows, _now(), digest],
        )


def _write(data: pa.Table, target: str, fmt: str, *, table: str | None, key: tuple[str, ...],
           scope: dict[str, str], removed: list[str] | None, replace: bool, private: bool = False) -> str:
    if fmt == "postgres":
        if not table:
            raise InputError("a Postgres export needs --table NAME")
        write_postgres(data, target, table, key=key, scope=scope, removed=removed, replace=replace)
        return f"{_redact(target)} table {table}"
    if table:  # not silently ignored: the user meant a table
        raise InputError(f"--table {table!r} names a Postgres table: give a postgresql:// URL "
                         f"in --to (not the file {target!r}), or leave --table out")
    write_file(data, target, fmt, private=private)
    return str(Path(target))


_redact = redact_url


def export_segments(
    store: Store,
    scheme: str,
    target: str | Path,
    *,
    mode: Literal["full", "changes"] = "full",
    name: str | None = None,
    as_of: dt.date | str | None = None,
    pii: str = "hash",
    scores: bool = True,
    format: str | None = None,
    table: str | None = None,
    webhook: WebhookPolicy | None = None,
) -> ExportResult:
    """Export the CRM segment list of ``scheme``, in full or as the changes since the last
    export of the same ``name``.

    Parameters
    ----------
    store : Store
    scheme : str
    target : str or Path
        A ``.csv`` / ``.parquet`` file, or a ``postgresql://`` URL (then ``table=``).
    mode : {"full", "changes"}, default="full"
    name : str, optional
        The export's name, which keys its watermark (default: ``scheme``). Give each
        destination its own name.
    as_of : date, optional
        Snapshot to export (default: the scheme's latest).
    pii : {"hash", "mask", "omit", "include"}, default="hash"
        Personal columns policy; ``include`` writes them in clear.
    scores : bool, default=True
        Add the scores stored at the snapshot.
    format : {"csv", "parquet", "postgres"}, optional
        Default: from the target.
    table : str, optional
        Postgres table name.
    webhook : WebhookPolicy, optional
        POST each change (incremental exports only) to a URL; see
        :mod:`segflow.exports._webhook`.

    Returns
    -------
    ExportResult

    Raises
    ------
    InputError
        Unknown mode, policy or format; a webhook with a full export.
    """
    if mode not in ("full", "changes"):
        raise InputError(f"unknown export mode {mode!r}; expected 'full' or 'changes'")
    if webhook is not None and mode != "changes":
        raise InputError("webhooks are sent per segment change: use them with --changes")
    check_policy(pii)
    check_scheme_name(scheme)
    name = name or scheme
    fmt = target_format(str(target), format)
    day = as_date(as_of) if as_of is not None else latest_snapshot(store, scheme)
    since, sent, since_id = _last_export(store, name) if mode == "changes" else (None, None, None)
    now_at_since = assignments_digest(store, scheme, since) if since is not None and sent else None
    # (a snapshot with no assignments left is the vanished watermark segment_changes explains)
    if (now_at_since is not None and _comparable(now_at_since, sent) and now_at_since != sent
            and now_at_since.split(":")[1] != "0"):
        raise SegflowError(
            f"the segments of scheme {scheme!r} at {since}, which the last export of {name!r} "
            "sent, were recomputed since (a run on new data or other settings): the changes "
            "would be counted from segments the receiver never got; export in full once "
            f"(without --changes, under the name {name!r}), then --changes again"
        )
    export_id = changes_export_id(since_id, scheme, day) if since_id else uuid.uuid4().hex[:12]
    removed: list[str] | None = None
    changes: dict[str, int] = {}
    if since is None:
        data = crm_segment_list(store, scheme, day, pii=pii, scores=scores).to_pyarrow()
        effective = "full"
    else:
        data = segment_changes(store, scheme, since, day, pii=pii, scores=scores).to_pyarrow()
        effective = "changes"
    data, keyed = _pseudonymised(store, data, pii)
    if effective == "changes":
        kinds = data["change"].to_pylist()
        changes = {k: kinds.count(k) for k in ("new", "changed", "removed")}
        removed = [c for c, k in zip(data["customer_id"].to_pylist(), kinds, strict=True) if k == "removed"]
    written_to = _write(
        data if fmt != "postgres" or effective == "full" else _mirror_rows(data),
        str(target), fmt, table=table, key=("scheme", "customer_id"), scope={"scheme": scheme},
        removed=removed, replace=effective == "full", private=pii == "include",
    )
    result = ExportResult(
        export_id=export_id, name=name, kind="segments", mode=effective, target=written_to,
        format=fmt, rows=data.num_rows, snapshot_date=day, scheme=scheme, since_snapshot=since,
        pii=pii, changes=changes, ids_pseudonymised=keyed,
    )
    if webhook is not None and effective == "changes" and data.num_rows:
        deliveries = send_changes(data.to_pylist(), webhook, export_id)
        with store.transaction() as con:
            store.append("webhook_deliveries", deliveries, con=con)
        statuses = deliveries["status"].to_pylist()
        result.webhooks_delivered = statuses.count("delivered")
        result.webhooks_failed = statuses.count("failed")
    _log(store, result, assignments_digest(store, scheme, day))
    return result


def _pseudonymised(store: Store, data: pa.Table, pii: str) -> tuple[pa.Table, int]:
    """``data`` with its customer ids that are e-mails or phone numbers as pseudonymous keys
    under every policy but ``include`` (:mod:`segflow.exports._pseudonym`: the key made with
    the project's secret, the same in every export), and how many were."""
    if pii == "include":
        return data, 0
    return pseudonymise_table(data, id_key(store.path))


def _mirror_rows(data: pa.Table) -> pa.Table:
    """The rows a mirrored table upserts: new and changed customers, without the change
    columns (removed customers are deleted instead)."""
    import pyarrow.compute as pc

    keep = pc.fill_null(pc.not_equal(data["change"], "removed"), True)
    return data.filter(keep).drop_columns(["change", "segment_at_since"])


def export_audience(
    store: Store,
    audience: Audience,
    target: str | Path,
    *,
    pii: str = "hash",
    format: str | None = None,
    table: str | None = None,
) -> ExportResult:
    """Export an audience (from :func:`segflow.campaigns.build_audience`) with its hold-out
    flag and the members' personal columns under ``pii``.

    A Postgres table keyed on (``audience``, ``customer_id``) gets the audience's rows
    replaced. The export is logged under the audience's name.
    """
    import ibis

    check_policy(pii)
    fmt = target_format(str(target), format)
    members = audience.to_pandas()
    members.insert(0, "audience", audience.name)
    members["holdout"] = members["group"] == "holdout"
    data = pa.Table.from_pandas(members, preserve_index=False)
    people = personal_columns(store.table("customers"), pii).to_pyarrow()
    if people.num_columns > 1:
        from segflow.store import interruptible

        con = interruptible(ibis.duckdb.connect())  # Ctrl-C stops its queries
        # a column with no value at all (a scheme's rank nobody has) is of Arrow's null type,
        # which DuckDB cannot store: joined without it, then put back in its place
        empty = [f.name for f in data.schema if pa.types.is_null(f.type)]
        m = con.create_table("members", data.drop_columns(empty), temp=True)
        p = con.create_table("people", people.rename_columns(
            ["p_customer_id", *people.column_names[1:]]), temp=True)
        joined = (m.left_join(p, m.customer_id == p.p_customer_id).drop("p_customer_id")
                  .order_by("customer_id").to_pyarrow())
        for name in empty:
            joined = joined.append_column(name, pa.nulls(joined.num_rows))
        order = [*data.column_names, *people.column_names[1:]]
        data = joined.select(order)
    data, keyed = _pseudonymised(store, data, pii)
    written_to = _write(data, str(target), fmt, table=table, key=("audience", "customer_id"),
                        scope={"audience": audience.name}, removed=None, replace=True,
                        private=pii == "include")
    result = ExportResult(
        export_id=uuid.uuid4().hex[:12], name=audience.name, kind="audience", mode="full",
        target=written_to, format=fmt, rows=data.num_rows, snapshot_date=None, pii=pii,
        ids_pseudonymised=keyed,
    )
    _log(store, result)
    return result
