"""The canonical tables of the store and the versioned migrations of its schema.

Every schema change is a new entry in :data:`MIGRATIONS`; a store records the version it is
at in ``schema_info``. Opening an older store applies the missing migrations inside one
transaction; opening a newer one is refused (see :class:`segflow.store.Store`).
All timestamps are tz-naive UTC. Identifiers are strings.
"""

from __future__ import annotations

#: Canonical columns of each input table, in order, with their DuckDB types.
CANONICAL_TABLES: dict[str, dict[str, str]] = {
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

#: Lineage columns every canonical row carries: where it came from.
LINEAGE_COLUMNS: dict[str, str] = {
    "source": "VARCHAR",  # the source name in segflow.toml
    "source_file": "VARCHAR",
    "source_row": "BIGINT",  # 1-based data row number in the file (header not counted)
    "load_id": "VARCHAR",
}


def _create_canonical(name: str) -> str:
    cols = {**CANONICAL_TABLES[name], **LINEAGE_COLUMNS}
    body = ",\n  ".join(f"{c} {t}" for c, t in cols.items())
    return f"CREATE TABLE IF NOT EXISTS {name} (\n  {body}\n)"


_V1 = [
    "CREATE TABLE IF NOT EXISTS schema_info (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)",
    *(_create_canonical(name) for name in CANONICAL_TABLES),
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

#: Exports and refresh: the export log whose latest row per export name is its watermark,
#: webhook deliveries, and the drift alerts of ``segflow refresh``.
_V2_EXPORTS_REFRESH = [
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

#: Ordered schema migrations; index i holds the statements that bring version i to i+1.
MIGRATIONS: list[list[str]] = [_V1, _V2_EXPORTS_REFRESH]

SCHEMA_VERSION = len(MIGRATIONS)
