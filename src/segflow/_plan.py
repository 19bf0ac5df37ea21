"""Which snapshots a run computes: the schemes' definitions fingerprinted, the input data
changed since the last successful run (from the load log and the row counts recorded with
every run), and the stored snapshots that are still current (:func:`snapshots_to_compute`).
Read by :mod:`segflow.pipeline` and the Spark run (:mod:`segflow.warehouse`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from segflow.config import SchemeSettings, Settings
from segflow.store import CANONICAL_TABLES, Store

#: The version of the definitions in segflow's code that assignments depend on beyond the
#: settings; raised when one changes, so that stored snapshots are computed again. 2 (session
#: 37): features rounded portably before comparison (half cents), and a customer record
#: without valid_from valid from its created_at.
DEFINITIONS_VERSION = 2


def settings_key(scheme: SchemeSettings, settings: Settings) -> str:
    """Fingerprint of what a scheme's assignments depend on besides the data: its resolved
    definition (frozen cut points included), the project's feature settings and
    :data:`DEFINITIONS_VERSION`. A stored snapshot computed under another key is computed
    again."""
    import hashlib
    import json

    payload = {"scheme": scheme.model_dump(mode="json"), "rfm": settings.rfm.model_dump(mode="json"),
               "definitions": DEFINITIONS_VERSION}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Canonical tables and the timestamp of their rows that decides which snapshots they touch.
_TIMED = {"transactions": "ts", "events": "ts", "campaign_exposures": "ts",
          "survey_responses": "ts", "customers": "least(created_at, valid_from)"}


def input_row_counts(store: Store) -> dict[str, int]:
    """Rows per canonical input table (recorded with every run, see :func:`changed_since`)."""
    return {t: int(store.raw.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
            for t in CANONICAL_TABLES}


def changed_since(store: Store, *, current_run: str | None = None) -> dt.datetime | None:
    """The earliest time of input data that changed since the last successful run: the
    minimum ``ts`` (customers: sign-up or ``valid_from``) of rows whose load finished after
    that run started; ``None`` when nothing changed.

    Rows that changed outside the load log (rows replaced by a late correction, deleted, or
    appended without a load) are seen by comparing the row counts recorded with the last run
    with today's: any difference not explained by logged loads gives ``datetime.min``
    (recompute everything). A store without a previous successful run gives ``datetime.min``.
    """
    import json

    row = store.raw.execute(
        "SELECT started_at, params FROM runs WHERE command = 'run' AND status = 'ok' "
        "AND run_id IS DISTINCT FROM ? ORDER BY started_at DESC LIMIT 1", [current_run]
    ).fetchone()
    if row is None:
        return dt.datetime.min
    since, params = row
    recorded = json.loads(params or "{}").get("input_rows")
    if not recorded:
        return dt.datetime.min
    loads = "(SELECT load_id FROM loads WHERE finished_at >= ?)"
    earliest: dt.datetime | None = None
    for table in CANONICAL_TABLES:
        when = _TIMED.get(table, "NULL")
        n_new, n_undated, first = store.raw.execute(
            f'SELECT count(*), count(*) FILTER (WHERE {when} IS NULL), min({when}) FROM "{table}" '
            f"WHERE load_id IN {loads}", [since]
        ).fetchone()
        now = int(store.raw.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
        if now != int(recorded.get(table, 0)) + int(n_new) or n_undated:
            return dt.datetime.min
        if first is not None:
            first = first if isinstance(first, dt.datetime) else dt.datetime.combine(
                first, dt.time())
            earliest = first if earliest is None else min(earliest, first)
    return earliest


def stale_snapshots(
    store: Store, schemes: Sequence[SchemeSettings], dates: Sequence[dt.date]
) -> dict[str, list[dt.date]]:
    """Per scheme, the stored snapshots that are no longer snapshot dates of the project
    (``[periods]`` changed: another granularity, start, end or list of dates). A run deletes
    them and computes every snapshot of the scheme again, so the store holds what a run
    from scratch would (:func:`snapshots_to_compute`)."""
    from segflow.store._spells import stored_snapshots

    current = set(dates)
    return {s.name: [d for d in stored_snapshots(store.raw, s.name) if d not in current]
            for s in schemes}


def snapshots_to_compute(
    store: Store,
    schemes: Sequence[SchemeSettings],
    dates: Sequence[dt.date],
    *,
    settings: Settings,
    full: bool = False,
    current_run: str | None = None,
    stale: Mapping[str, Sequence[dt.date]] | None = None,
) -> dict[str, list[dt.date]]:
    """Per scheme, the snapshot dates of ``dates`` a run computes (ascending). ``stale``:
    :func:`stale_snapshots` when the caller has it (read here otherwise).

    A snapshot is computed when it was never computed for the scheme under its current
    definition (:func:`settings_key`: a new version, changed settings, cut points), or when
    input data at or before it changed since the last run (:func:`changed_since`: a feature
    at snapshot ``s`` reads data with ``ts < s``, so new data at ``t`` changes every
    snapshot after ``t``), or when the run that wrote it did not finish (failed or killed
    after committing its segments, before its scores and aggregates). ``full=True`` computes
    every date. A scheme with stored snapshots that are no longer dates of the project
    (:func:`stale_snapshots`) computes every date. So a run after loading one new month
    computes one new snapshot, and a run with nothing new computes none.
    """
    from segflow.store._spells import stored_snapshots

    stale = stale_snapshots(store, schemes, dates) if stale is None else stale
    since = None if full else changed_since(store, current_run=current_run)
    out: dict[str, list[dt.date]] = {}
    for scheme in schemes:
        done = set(stored_snapshots(store.raw, scheme.name, settings_key(scheme, settings),
                                     finished_only=True))
        out[scheme.name] = [
            d for d in sorted(set(dates))
            if full or stale.get(scheme.name) or d not in done
            or (since is not None and dt.datetime.combine(d, dt.time()) > since)
        ]
    return out
