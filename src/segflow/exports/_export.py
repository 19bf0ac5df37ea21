"""``segflow export``: segment lists and audiences to files or Postgres, full or incremental.

An export has a name (default: the scheme). Every export is logged in the store table
``export_log``; the snapshot of the latest delivered export of a name is its **watermark**.
An incremental export (``mode="changes"``) writes only the customers whose segment differs
from the one they had at the watermark (:func:`~segflow.exports.segment_changes`) and then
moves the watermark to the exported snapshot; exporting twice the same snapshot writes no
rows the second time. With no watermark yet, the first incremental export lists every
customer as ``new``, in the columns of every later one. An export whose webhooks failed
does not move the watermark (its re-run sends the same changes under the same id), and
``resend=True`` writes the latest delivered export again (a file whose upload failed).
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
    #: changes of a re-run whose webhooks got through in an earlier run (not sent again)
    webhooks_delivered_before: int = 0
    #: the latest export of the name written again (``resend``)
    resent: bool = False

    @property
    def watermark_moved(self) -> bool:
        """Whether the export is the name's watermark now: not when a webhook failed."""
        return not self.webhooks_failed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def watermark(store: Store, name: str) -> dt.date | None:
    """The snapshot of the latest delivered segment-list export logged under ``name`` (None
    before the first). An export whose webhooks failed is logged but does not move it."""
    return _last_export(store, name)[0]


#: ``export_log.status`` of an export whose webhooks did not all get through: logged (its id
#: is kept for the re-run) but not a watermark. Other statuses: ``done``, ``resent`` (a
#: ``--resend``); null in rows an older segflow wrote (done).
WEBHOOKS_FAILED = "webhooks_failed"
_DELIVERED = f"coalesce(status, 'done') <> '{WEBHOOKS_FAILED}'"


def _last_export(store: Store, name: str) -> tuple[dt.date | None, str | None, str | None]:
    """(snapshot, assignments digest, export id) of the latest delivered segment-list export
    of ``name``."""
    row = store.raw.execute(
        "SELECT snapshot_date, assignments_digest, export_id FROM export_log WHERE export_name = ? "
        f"AND kind = 'segments' AND {_DELIVERED} ORDER BY exported_at DESC, export_id DESC LIMIT 1",
        [name],
    ).fetchone()
    return (row[0], row[1], row[2]) if row else (None, None, None)


def _failed_id(store: Store, name: str, since: dt.date | None, day: dt.date) -> str | None:
    """The id of an export of ``name`` from ``since`` to ``day`` whose webhooks failed and
    that no delivered export followed: its re-run keeps it (and its Idempotency-Keys). For the
    first export of a name, whose id an older segflow drew at random (now
    :func:`first_export_id`; the later ones' ids are derived from their watermark's)."""
    row = store.raw.execute(
        "SELECT export_id FROM export_log WHERE export_name = ? AND kind = 'segments' "
        f"AND status = '{WEBHOOKS_FAILED}' AND since_snapshot IS NOT DISTINCT FROM ? "
        "AND snapshot_date = ? AND exported_at > coalesce((SELECT max(exported_at) FROM export_log "
        f"WHERE export_name = ? AND kind = 'segments' AND {_DELIVERED}), TIMESTAMP '0001-01-01') "
        "ORDER BY exported_at DESC LIMIT 1",
        [name, since, day, name],
    ).fetchone()
    return row[0] if row else None


def changes_export_id(since_id: str, scheme: str, day: dt.date) -> str:
    """The id of an incremental export: 12 hex digits of SHA-256 of the id of the export it
    continues (the watermark's), the scheme and the exported snapshot. An export interrupted
    before it was logged (killed, Ctrl-C, a timeout: the watermark did not move) and run again
    gets the same id, so its webhooks carry the same ``Idempotency-Key`` and a receiver drops
    the changes it already had; any export logged since (a new watermark) gives new ids."""
    import hashlib

    return hashlib.sha256(f"{since_id}\x00{scheme}\x00{day.isoformat()}".encode()).hexdigest()[:12]


def first_export_id(store: Store, name: str, scheme: str, day: dt.date) -> str:
    """The id of the first incremental export of ``name`` (no watermark: every customer
    ``new``): 12 hex digits of SHA-256 of the name, the scheme, the snapshot, the digest of
    its assignments (:func:`assignments_digest`) and the time the store was created. Derived,
    as the later ones' ids are: a first export interrupted after its webhooks went out but
    before it was logged (the longest one of a name, a POST per customer) and run again sends
    them under the same Idempotency-Keys (a random id sent every customer again under new
    keys); other segments at that snapshot, or another store (rebuilt from scratch, whose
    receiver may have been reset too), give another id, so a receiver drops nothing it lacks."""
    import hashlib

    digest = assignments_digest(store, scheme, day)
    created = store.raw.execute("SELECT min(applied_at) FROM schema_info").fetchone()[0]
    text = f"first\x00{name}\x00{scheme}\x00{day.isoformat()}\x00{digest}\x00{created}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def _log(store: Store, result: ExportResult, digest: str | None = None, status: str = "done") -> None:
    with store.transaction() as con:
        con.execute(
            "INSERT INTO export_log (export_id, export_name, kind, scheme, snapshot_date, "
            "since_snapshot, mode, target, format, pii, rows_written, exported_at, "
            "assignments_digest, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [result.export_id, result.name, result.kind, result.scheme, result.snapshot_date, result.since_snapshot, result.mode,
             result.target, result.format, result.pii, result.rows, _now(), digest, status],
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


@dataclasses.dataclass(frozen=True)
class _Delta:
    """What an export of segments writes: the list at ``day`` (``full``), or its changes
    since ``since`` (None: the first delta of a name, every customer ``new``), under
    ``export_id``."""

    since: dt.date | None
    day: dt.date
    export_id: str
    full: bool


def _recomputed(store: Store, scheme: str, snapshot: dt.date, sent: str | None) -> bool:
    """Whether the segments of ``scheme`` at ``snapshot`` differ from those an export sent
    (its digest ``sent``; a snapshot with no assignments left is the vanished watermark
    :func:`segment_changes` explains, a digest of another DuckDB version is not compared)."""
    if not sent:
        return False
    now = assignments_digest(store, scheme, snapshot)
    return _comparable(now, sent) and now != sent and now.split(":")[1] != "0"


def _next_delta(store: Store, name: str, scheme: str, day: dt.date, mode: str) -> _Delta:
    """The export that follows the watermark of ``name`` (a full one: the list)."""
    if mode == "full":
        return _Delta(None, day, uuid.uuid4().hex[:12], full=True)
    since, sent, since_id = _last_export(store, name)
    if since is not None and _recomputed(store, scheme, since, sent):
        raise SegflowError(
            f"the segments of scheme {scheme!r} at {since}, which the last export of {name!r} "
            "sent, were recomputed since (a run on new data or other settings): the changes "
            "would be counted from segments the receiver never got; export in full once "
            f"(without --changes, under the name {name!r}), then --changes again"
        )
    export_id = (changes_export_id(since_id, scheme, day) if since_id
                 else _failed_id(store, name, None, day) or first_export_id(store, name, scheme, day))
    return _Delta(since, day, export_id, full=False)


def _resent_delta(store: Store, name: str, scheme: str, as_of: dt.date | str | None,
                  pii: str) -> _Delta:
    """The latest delivered export of ``name`` again: its snapshots and its id."""
    rows = store.raw.execute(
        "SELECT export_id, scheme, snapshot_date, since_snapshot, mode, pii, assignments_digest "
        f"FROM export_log WHERE export_name = ? AND kind = 'segments' AND {_DELIVERED} "
        "ORDER BY exported_at DESC, export_id DESC LIMIT 1",
        [name],
    ).fetchall()
    if not rows:
        raise SegflowError(f"no export named {name!r} to send again: --resend repeats the last "
                           "export of --name (leave --resend out for the first one)")
    export_id, logged_scheme, day, since, mode, logged_pii, sent = rows[0]
    if logged_scheme != scheme:
        raise InputError(f"the last export named {name!r} was of scheme {logged_scheme!r}, not "
                         f"{scheme!r}: give --scheme {logged_scheme} to send it again")
    if as_of is not None and as_date(as_of) != day:
        raise InputError(f"--resend writes the snapshot of the export it repeats ({day}): "
                         f"leave out --snapshot {as_date(as_of)}")
    if logged_pii and logged_pii != pii:
        raise InputError(f"the last export named {name!r} was written with --pii {logged_pii}: "
                         f"give --pii {logged_pii} to send it again")
    # what the receiver held at ``since``: the latest delivered export of that snapshot (not
    # the row before the last: after a --resend that is the export it repeated)
    before = None if since is None else store.raw.execute(
        "SELECT assignments_digest FROM export_log WHERE export_name = ? AND kind = 'segments' "
        f"AND {_DELIVERED} AND snapshot_date = ? ORDER BY exported_at DESC, export_id DESC LIMIT 1",
        [name, since]).fetchone()
    if _recomputed(store, scheme, day, sent) or (
            before is not None and _recomputed(store, scheme, since, before[0])):
        raise SegflowError(
            f"the segments of scheme {scheme!r} that export {export_id} of {name!r} sent were "
            "recomputed since (a run on new data or other settings): it cannot be written "
            f"again; export in full once (without --changes, under the name {name!r})")
    return _Delta(since, day, export_id, full=mode == "full")


def _delivered_before(store: Store, export_id: str, url: str) -> set[str]:
    """Customer ids whose webhook of export ``export_id`` to ``url`` got through already (a
    re-run after failed webhooks sends only the others)."""
    rows = store.raw.execute(
        "SELECT DISTINCT customer_id FROM webhook_deliveries WHERE export_id = ? AND url = ? "
        "AND status = 'delivered'", [export_id, redact_url(url)]).fetchall()
    return {r[0] for r in rows}


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
    resend: bool = False,
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
        ``changes``: the customers whose segment changed since the watermark, with the
        columns ``change`` and ``segment_at_since``; the first export of a name (no
        watermark) lists every customer as ``new``.
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
        :mod:`segflow.exports._webhook`. When any delivery fails, the export is logged
        as ``webhooks_failed`` and the watermark does not move: run it again to retry
        (the same id and Idempotency-Keys; the deliveries that got through are not
        repeated).
    resend : bool, default=False
        With ``mode="changes"``: write the latest delivered export of ``name`` again (its
        snapshots, rows and export id, so webhooks carry the same Idempotency-Keys) instead
        of the changes since it, e.g. after the upload of its file failed. The watermark
        stays.

    Returns
    -------
    ExportResult

    Raises
    ------
    InputError
        Unknown mode, policy or format; a webhook with a full export; ``resend`` without
        ``changes``, with another snapshot, scheme or ``pii`` than the export it repeats.
    """
    if mode not in ("full", "changes"):
        raise InputError(f"unknown export mode {mode!r}; expected 'full' or 'changes'")
    if webhook is not None and mode != "changes":
        raise InputError("webhooks are sent per segment change: use them with --changes")
    if resend and mode != "changes":
        raise InputError("--resend writes the last --changes export of a name again: give --changes")
    check_policy(pii)
    check_scheme_name(scheme)
    name = name or scheme
    fmt = target_format(str(target), format)
    if resend:
        delta = _resent_delta(store, name, scheme, as_of, pii)
    else:
        day = as_date(as_of) if as_of is not None else latest_snapshot(store, scheme)
        delta = _next_delta(store, name, scheme, day, mode)
    day, since = delta.day, delta.since
    removed: list[str] | None = None
    changes: dict[str, int] = {}
    if delta.full:
        data = crm_segment_list(store, scheme, day, pii=pii, scores=scores).to_pyarrow()
    else:
        data = segment_changes(store, scheme, since, day, pii=pii, scores=scores).to_pyarrow()
    data, keyed = _pseudonymised(store, data, pii)
    if not delta.full:
        kinds = data["change"].to_pylist()
        changes = {k: kinds.count(k) for k in ("new", "changed", "removed")}
        removed = [c for c, k in zip(data["customer_id"].to_pylist(), kinds, strict=True) if k == "removed"]
    written_to = _write(
        data if fmt != "postgres" or delta.full else _mirror_rows(data),
        str(target), fmt, table=table, key=("scheme", "customer_id"), scope={"scheme": scheme},
        removed=removed, replace=delta.full or since is None, private=pii == "include",
    )
    result = ExportResult(
        export_id=delta.export_id, name=name, kind="segments",
        mode="full" if delta.full else "changes", target=written_to, format=fmt,
        rows=data.num_rows, snapshot_date=day, scheme=scheme, since_snapshot=since, pii=pii,
        changes=changes, ids_pseudonymised=keyed, resent=resend,
    )
    if webhook is not None and not delta.full and data.num_rows:
        rows = data.to_pylist()
        if not resend:  # a re-run after failed webhooks: only those that did not get through
            done = _delivered_before(store, delta.export_id, webhook.url)
            result.webhooks_delivered_before = sum(r["customer_id"] in done for r in rows)
            rows = [r for r in rows if r["customer_id"] not in done]
        deliveries = send_changes(rows, webhook, delta.export_id)
        with store.transaction() as con:
            store.append("webhook_deliveries", deliveries, con=con)
        statuses = deliveries["status"].to_pylist()
        result.webhooks_delivered = statuses.count("delivered")
        result.webhooks_failed = statuses.count("failed")
    status = WEBHOOKS_FAILED if result.webhooks_failed else "resent" if resend else "done"
    _log(store, result, assignments_digest(store, scheme, day), status)
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
