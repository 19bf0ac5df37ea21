"""The canonical tables of the store and the versioned migrations of its schema.

Every schema change is a new entry in :data:`MIGRATIONS`; a store records the version it is
at in ``schema_info``. Opening an older store applies the missing migrations inside one
transaction; opening a newer one is refused (see :class:`segflow.store.Store`).
All timestamps are tz-naive UTC. Identifiers are strings.
"""

from __future__ import annotations

from segflow.store._spells import MIGRATION_V5

#: Canonical columns of each input table at schema version 1 (frozen: migrations build on it).
_V1_TABLES: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "VARCHAR",
        "created_at": "TIMESTAMP",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "age_band": "VARCHAR",
        "gender": "VARCHAR",
        "income_band": "VARCHAR",
        "region": "VARCHAR",
        "city": "VARCHAR",
        "signup_channel": "VARCHAR",
    },
    "transactions": {
        "transaction_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "amount": "DOUBLE",
        "quantity": "DOUBLE",
        "unit_price": "DOUBLE",
        "category": "VARCHAR",
        "channel": "VARCHAR",
        "promo_code": "VARCHAR",
        "is_return": "BOOLEAN",
    },
    "events": {
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "event_type": "VARCHAR",
        "item": "VARCHAR",
        "category": "VARCHAR",
        "session_id": "VARCHAR",
    },
    "campaign_exposures": {
        "campaign_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "arm": "VARCHAR",
        "exposure_type": "VARCHAR",
    },
    "survey_responses": {
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "question": "VARCHAR",
        "answer": "VARCHAR",
    },
}

#: Columns added by later schema versions: version -> table -> column -> type.
_ADDED: dict[int, dict[str, dict[str, str]]] = {
    # 2: attribute history (a customer row is valid from valid_from to valid_to, both
    # optional) and the product of a transaction line
    2: {
        "customers": {"valid_from": "TIMESTAMP", "valid_to": "TIMESTAMP"},
        "transactions": {"product_id": "VARCHAR"},
    },
}

#: Canonical columns of each input table, in order, with their DuckDB types: those of
#: version 1, then the columns later versions added (in the order of the migrations).
CANONICAL_TABLES: dict[str, dict[str, str]] = {
    name: {**cols, **{c: t for added in _ADDED.values() for c, t in added.get(name, {}).items()}}
    for name, cols in _V1_TABLES.items()
}

#: Lineage columns every canonical row carries: where it came from.
LINEAGE_COLUMNS: dict[str, str] = {
    "source": "VARCHAR",  # the source name in segflow.toml
    "source_file": "VARCHAR",
    "source_row": "BIGINT",  # 1-based data row number in the file (header not counted)
    "load_id": "VARCHAR",
}


def _create_canonical(name: str) -> str:
    cols = {**_V1_TABLES[name], **LINEAGE_COLUMNS}
    body = ",\n  ".join(f"{c} {t}" for c, t in cols.items())
    return f"CREATE TABLE IF NOT EXISTS {name} (\n  {body}\n)"


_V1 = [
    "CREATE TABLE IF NOT EXISTS schema_info (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)",
    *(_create_canonical(name) for name in _V1_TABLES),
    """CREATE TABLE IF NOT EXISTS quarantine (
  source VARCHAR, source_file VARCHAR, row_number BIGINT, raw_row VARCHAR,
  rule VARCHAR, reason VARCHAR, column_name VARCHAR, load_id VARCHAR, ingested_at TIMESTAMP
)""",
    """CREATE TABLE IF NOT EXISTS loads (
  load_id VARCHAR, source VARCHAR, source_file VARCHAR, file_hash VARCHAR, target_table VARCHAR,
  rows_read BIGINT, rows_accepted BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT,
  started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS runs (
  run_id VARCHAR, command VARCHAR, params VARCHAR, segflow_version VARCHAR,
  started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR, message VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS segment_assignments (
  scheme VARCHAR NOT NULL, scheme_version VARCHAR, snapshot_date DATE NOT NULL,
  customer_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, segment_rank INTEGER, run_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS customer_scores (
  snapshot_date DATE NOT NULL, customer_id VARCHAR NOT NULL, model VARCHAR NOT NULL,
  score VARCHAR NOT NULL, value DOUBLE, run_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS scheme_registry (
  scheme VARCHAR NOT NULL, scheme_version VARCHAR NOT NULL, kind VARCHAR,
  definition VARCHAR, created_at TIMESTAMP
)""",
]

_V2 = [
    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {ctype}"
    for table, cols in _ADDED[2].items()
    for column, ctype in cols.items()
]
#: Version 3: API tokens of ``segflow serve`` (only a SHA-256 of each secret is kept) and the
#: audit log of who read customer-level data and who exported (see docs/server.md).
_V3_SERVER_AUTH = [
    """CREATE TABLE IF NOT EXISTS api_tokens (
  token_id VARCHAR PRIMARY KEY, name VARCHAR, role VARCHAR NOT NULL, secret_sha256 VARCHAR NOT NULL,
  created_at TIMESTAMP NOT NULL, expires_at TIMESTAMP, revoked_at TIMESTAMP
)""",
    """CREATE TABLE IF NOT EXISTS audit_log (
  event_id VARCHAR PRIMARY KEY, event_at TIMESTAMP NOT NULL, token_id VARCHAR, role VARCHAR,
  action VARCHAR NOT NULL, resource VARCHAR, detail VARCHAR, client VARCHAR
)""",
]

#: Version 4: exports and refresh: the export log whose latest row per export name is its watermark,
#: webhook deliveries, and the drift alerts of ``segflow refresh``.
_V4_EXPORTS_REFRESH = [
    """CREATE TABLE IF NOT EXISTS export_log (
  export_id VARCHAR NOT NULL, export_name VARCHAR NOT NULL, kind VARCHAR NOT NULL,
  scheme VARCHAR, snapshot_date DATE, since_snapshot DATE, mode VARCHAR NOT NULL,
  target VARCHAR, format VARCHAR, pii VARCHAR, rows_written BIGINT, exported_at TIMESTAMP NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
  export_id VARCHAR NOT NULL, url VARCHAR NOT NULL, scheme VARCHAR, customer_id VARCHAR,
  change VARCHAR, payload VARCHAR, status VARCHAR NOT NULL, attempts INTEGER NOT NULL,
  http_status INTEGER, error VARCHAR, first_attempt_at TIMESTAMP, last_attempt_at TIMESTAMP
)""",
    """CREATE TABLE IF NOT EXISTS alerts (
  alert_id VARCHAR NOT NULL, run_id VARCHAR, created_at TIMESTAMP NOT NULL,
  snapshot_date DATE, kind VARCHAR NOT NULL, subject VARCHAR, metric VARCHAR,
  value DOUBLE, threshold DOUBLE, severity VARCHAR NOT NULL, message VARCHAR NOT NULL
)""",
]

#: Version 5 (issue 10): assignments as change rows. ``segment_spells`` holds one row per
#: (scheme, customer, run of equal segments); ``segment_snapshots`` the snapshots computed per
#: scheme; ``segment_assignments`` becomes a view with its former columns. Existing rows are
#: moved into spells. See :mod:`segflow.store._spells`.
_V5_SPELLS = MIGRATION_V5

#: Version 6: the run's aggregates, which the report and ``serve`` read
#: instead of customer-level tables (written by :func:`segflow.summaries.write_aggregates`;
#: each run replaces them). Money in the project's currency, net of returns.
_V6_SUMMARIES = [
    """CREATE TABLE IF NOT EXISTS summary_segments (
  scheme VARCHAR NOT NULL, snapshot_date DATE NOT NULL, segment VARCHAR NOT NULL, segment_rank BIGINT,
  customers BIGINT NOT NULL, share DOUBLE, revenue_12m DOUBLE, revenue_share DOUBLE,
  revenue_all_time DOUBLE, scored_customers BIGINT, mean_p_alive DOUBLE, expected_purchases DOUBLE,
  clv DOUBLE, mean_clv DOUBLE, clv_share DOUBLE, run_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS summary_transitions (
  scheme VARCHAR NOT NULL, from_date DATE NOT NULL, to_date DATE NOT NULL,
  from_segment VARCHAR NOT NULL, to_segment VARCHAR NOT NULL, from_rank BIGINT, to_rank BIGINT,
  customers BIGINT NOT NULL, revenue DOUBLE, revenue_12m DOUBLE, clv DOUBLE, run_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS summary_profile_segments (
  scheme VARCHAR NOT NULL, snapshot_date DATE NOT NULL, segment VARCHAR NOT NULL, name VARCHAR,
  suggested_name VARCHAR, distinguishing VARCHAR, run_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS summary_profiles (
  scheme VARCHAR NOT NULL, snapshot_date DATE NOT NULL, segment VARCHAR NOT NULL,
  feature VARCHAR NOT NULL, mean DOUBLE, median DOUBLE, std_diff DOUBLE, base_mean DOUBLE,
  base_std DOUBLE, base_median DOUBLE, run_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS summary_audit (
  as_of DATE, "check" VARCHAR, "table" VARCHAR, severity VARCHAR, count BIGINT, total BIGINT,
  share DOUBLE, examples VARCHAR, advice VARCHAR, data_end DATE, score DOUBLE,
  created_at TIMESTAMP, run_id VARCHAR
)""",
]

#: Version 7: the fitted parameters of the models a run
#: scores with (one JSON document per snapshot and model), so ``POST /api/v1/score`` applies
#: exactly the models behind the stored scores without refitting them.
_V7_MODEL_PARAMS = [
    """CREATE TABLE IF NOT EXISTS model_params (
  snapshot_date DATE NOT NULL, model VARCHAR NOT NULL, params VARCHAR NOT NULL,
  run_id VARCHAR, fitted_at TIMESTAMP
)""",
]

#: Version 8: the run's stored model results (one JSON document per result name: the CLV
#: diagnostics, the campaign read-outs, the overview's totals; see
#: :mod:`segflow.summaries._results`), so the report neither refits models nor scans
#: customer-level tables.
_V8_SUMMARY_RESULTS = [
    """CREATE TABLE IF NOT EXISTS summary_results (
  name VARCHAR NOT NULL, snapshot_date DATE, document VARCHAR NOT NULL, run_id VARCHAR,
  created_at TIMESTAMP
)""",
]

#: Version 9 (issue 10): the feature state, the one pass's running sums per customer at the
#: latest computed snapshot (:mod:`segflow.features._state`), from which a run computing one
#: new snapshot derives its features without reading all history. One row per customer;
#: ``snapshot_date`` and ``state_key`` say what it was computed for (every row the same).
#: Money and quantities in millionths, days since 1970-01-01 (state version 3; since
#: version 4 a run writes money as ``DECIMAL(38, 6)``). A run replaces the whole table (its
#: columns are those of the state version it writes, see ``state_key``).
_V9_STATE_MEASURES = (
    "orders_total", "_freq_w", "_paid_w", "_promo_w", "_gross_w", "_qty_w", "_qtyn_w",
    "_freq_12", "_gross_12", "_freq_prev", "_gross_prev", "_ret_w", "_ret_12", "_ret_prev",
    "_q1", "_q2", "_q3", "_q4", "_dbad1", "_dbad2", "_dbad3", "_dbad4", "_years", "_ndays",
    "_gap2", "_first", "_first_any", "_last", "_yc1", "_yc2", "_yc3", "_yc4",
)
_V9_FEATURE_STATE = [
    "CREATE TABLE IF NOT EXISTS feature_state (\n  snapshot_date DATE NOT NULL, "
    "state_key VARCHAR NOT NULL, customer_id VARCHAR NOT NULL,\n  "
    + ", ".join(f'"{m}" BIGINT' for m in _V9_STATE_MEASURES) + "\n)",
]

#: Version 10 (issue 10): the customers with CLV scores per transition cell
#: (``summary_transitions.scored_customers``: the mean CLV of a cell; null in rows an older
#: segflow wrote, which a run computes again), and the net amounts per customer and period of
#: the aggregates' grid (``summary_amounts``: ``period_end`` is the first boundary after the
#: lines, the boundaries being the snapshot dates and the dates 365 days before them, listed
#: in ``summary_amount_periods``), which a run computing one new snapshot extends instead of
#: reading every transaction again (:mod:`segflow.summaries._amounts`).
_V10_AMOUNTS = [
    "ALTER TABLE summary_transitions ADD COLUMN IF NOT EXISTS scored_customers BIGINT",
    """CREATE TABLE IF NOT EXISTS summary_amounts (
  customer_id VARCHAR NOT NULL, period_end DATE NOT NULL, amount DOUBLE NOT NULL
)""",
    "CREATE TABLE IF NOT EXISTS summary_amount_periods (period_end DATE NOT NULL)",
]

#: Version 11: the digest of the assignments an export of segments sent (customers and their
#: segments at the exported snapshot, :func:`segflow.exports._export.assignments_digest`), so
#: that a later ``--changes`` export notices when a run recomputed that snapshot since (new
#: data, other settings) instead of comparing with segments the receiver never got. Null in
#: rows an older segflow wrote (not checked); a digest names the DuckDB version whose ``hash``
#: made it.
_V11_EXPORT_DIGEST = [
    "ALTER TABLE export_log ADD COLUMN IF NOT EXISTS assignments_digest VARCHAR",
]

#: Version 12: per load, the rows an earlier delivery of the same file stored that this
#: delivery no longer holds and that stay in the store (``loads.rows_stale``; null in rows
#: of older loads, which did not count them; see :mod:`segflow.sources._redeliver`).
_V12_STALE = ["ALTER TABLE loads ADD COLUMN IF NOT EXISTS rows_stale BIGINT"]

#: Version 13: the previous snapshot of a drift alert (``alerts.previous_snapshot_date``): with
#: ``snapshot_date`` the pair it compares, so that a refresh does not record again an alert of
#: the same pair that is unchanged (:func:`segflow.refresh._drift.new_alerts`). Null in rows
#: an older segflow wrote (their message, which names both dates, stands in).
_V13_ALERT_PAIR = ["ALTER TABLE alerts ADD COLUMN IF NOT EXISTS previous_snapshot_date DATE"]

#: The partition of an alert's measurement: its pair of snapshots (an older row without a
#: previous snapshot: its message, which names both), kind, subject and metric.
_ALERT_KEY = ("snapshot_date, previous_snapshot_date, CASE WHEN previous_snapshot_date IS NULL "
              "THEN message END, kind, subject, metric")

#: The latest refresh that measured drift (``segflow.refresh._drift``'s rule: ok, not one that
#: found nothing new), as of the upgrade to version 14.
_LATEST_MEASURING_REFRESH = (
    "SELECT run_id, started_at FROM runs WHERE command = 'refresh' AND status = 'ok' "
    "AND message IS DISTINCT FROM 'nothing new' ORDER BY started_at DESC LIMIT 1")

#: Version 14: an export whose webhooks failed is logged (``export_log.status``:
#: ``webhooks_failed``; ``done``, ``resent``; null in older rows: done) without becoming its
#: name's watermark, and the latest refresh that measured a drift alert again unchanged
#: (``alerts.last_seen_run_id``), so that ``segflow alerts --latest`` lists every alert of the
#: latest refresh, also those recorded before. Alerts an older segflow recorded again at each
#: refresh (the same pair, severity and value, one after the other) are kept once: the first
#: row, seen last by the run of the last one (:func:`segflow.refresh._drift.recorded_before`'s
#: rule, tolerance included).
_V14_DELIVERY_SEEN = [
    "ALTER TABLE export_log ADD COLUMN IF NOT EXISTS status VARCHAR",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS last_seen_run_id VARCHAR",
    f"""CREATE TEMP TABLE _alerts_kept AS
WITH o AS (
  SELECT alert_id, run_id, created_at, row({_ALERT_KEY}) AS k, severity, value,
    lag(severity) OVER w AS p_severity, lag(value) OVER w AS p_value
  FROM alerts WINDOW w AS (PARTITION BY {_ALERT_KEY} ORDER BY created_at, alert_id)
), g AS (
  SELECT *, sum(CASE WHEN p_severity IS NOT DISTINCT FROM severity AND abs(value - p_value)
      <= greatest(1e-6 * greatest(abs(value), abs(p_value)), 1e-12) THEN 0 ELSE 1 END)
    OVER (PARTITION BY k ORDER BY created_at, alert_id ROWS UNBOUNDED PRECEDING) AS run_of_equal
  FROM o
)
SELECT first(alert_id ORDER BY created_at, alert_id) AS alert_id,
  last(run_id ORDER BY created_at, alert_id) AS seen_by
FROM g GROUP BY k, run_of_equal""",
    "DELETE FROM alerts WHERE alert_id NOT IN (SELECT alert_id FROM _alerts_kept)",
    "UPDATE alerts SET last_seen_run_id = _alerts_kept.seen_by FROM _alerts_kept "
    "WHERE alerts.alert_id = _alerts_kept.alert_id",
    "DROP TABLE _alerts_kept",
    # A refresh of an older segflow that measured its alerts again unchanged recorded nothing
    # and marked nothing: its `--latest` listed the alerts of the latest refresh that recorded
    # any, so those stay listed as seen by it until the next refresh.
    f"""UPDATE alerts SET last_seen_run_id = r.run_id
FROM ({_LATEST_MEASURING_REFRESH}) r
WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.run_id = r.run_id)
  AND alerts.created_at <= r.started_at
  AND coalesce(alerts.last_seen_run_id, alerts.run_id) =
    (SELECT coalesce(a.last_seen_run_id, a.run_id) FROM alerts a ORDER BY a.created_at DESC LIMIT 1)""",
]

#: Ordered schema migrations; index i holds the statements that bring version i to i+1.
MIGRATIONS: list[list[str]] = [
    _V1, _V2, _V3_SERVER_AUTH, _V4_EXPORTS_REFRESH, _V5_SPELLS, _V6_SUMMARIES, _V7_MODEL_PARAMS,
    _V8_SUMMARY_RESULTS, _V9_FEATURE_STATE, _V10_AMOUNTS, _V11_EXPORT_DIGEST, _V12_STALE,
    _V13_ALERT_PAIR, _V14_DELIVERY_SEEN,
]

SCHEMA_VERSION = len(MIGRATIONS)
