"""Customer ids of a test store replaced (by e-mails, phone numbers, formula-like text), and
the pseudonymous key segflow should write for one, recomputed with the standard library."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

import duckdb


def rename_customers(store: Path, new_ids: Mapping[str, str]) -> None:
    """Replace each old customer id of ``new_ids`` by its new one in every base table of the
    DuckDB file ``store`` that holds a ``customer_id`` column."""
    con = duckdb.connect(str(store))
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'customer_id' "
            "AND table_name IN (SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE')").fetchall()]
        for table in tables:
            for old, new in new_ids.items():
                con.execute(f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?", [new, old])
    finally:
        con.close()


def pid_key(directory: Path, customer_id: str) -> str:
    """The pseudonymous key of ``customer_id`` under the project secret of ``directory``:
    ``pid-`` + the first 128 bits of HMAC-SHA-256, in hex."""
    secret = bytes.fromhex((directory / "segflow.duckdb.idkey").read_text().strip())
    return "pid-" + hmac.new(secret, customer_id.encode(), hashlib.sha256).hexdigest()[:32]
