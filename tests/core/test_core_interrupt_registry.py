"""Ctrl-C stops the queries of the in-memory DuckDBs that commands read files into, as it
stops a store's (segflow.store.interruptible, interrupt_queries): DuckDB 1.5.6 leaves a
query's worker threads running after its own check of the signal, and the next statement
on that connection waited for them."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import duckdb
import pytest

from segflow.cli import _interrupt
from segflow.store import _store

LONG = "SELECT count(*) FROM range(100000000000) a WHERE hash(a.range) = 0"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _campaign_responses(tmp: Path):  # segflow campaign effect --responses FILE
    from segflow.cli._campaign import read_customer_file

    table = read_customer_file(_write(tmp / "r.csv", "customer_id,group,converted\nc1,treatment,1\n"))
    return table.get_backend().con


def _clv_file(tmp: Path):  # segflow clv FILE
    from segflow.cli._clv import read_transactions

    table, _ = read_transactions(_write(tmp / "t.csv", "customer_id,ts,amount\nc1,2024-01-02,5\n"))
    return table.get_backend().con


def _cluster_file(tmp: Path):  # segflow segment cluster --input FILE
    from segflow.cli._cluster import _cluster_input

    con, *_ = _cluster_input(_write(tmp / "f.csv", "customer_id,recency,monetary\nc1,3,9.5\n"),
                             "customer_id", None, tmp)
    return con.con


@pytest.mark.parametrize("opened", [_campaign_responses, _clv_file, _cluster_file],
                         ids=["campaign_responses", "clv_file", "segment_cluster_input"])
def test_a_file_command_s_in_memory_connection_is_registered(tmp_path, opened):
    con = opened(tmp_path)
    assert isinstance(con, duckdb.DuckDBPyConnection)
    assert con in _store._OPEN


@pytest.mark.parametrize("command", ["check", "ingest"])
def test_sources_check_and_ingest_preflight_connections_are_registered(tmp_path, monkeypatch,
                                                                       command):
    """`sources check` and ingest's preflight stage a file on a connection of their own
    (closed when they return: caught while open)."""
    from segflow.config import Settings
    from segflow.sources import _check, _ingest

    _write(tmp_path / "segflow.toml",
           '[[sources]]\nname = "o"\ntable = "transactions"\npath = "tx.csv"\n'
           '[sources.columns]\ntransaction_id = "id"\ncustomer_id = "c"\nts = "ts"\n'
           'amount = "amount"\n')
    _write(tmp_path / "tx.csv", "id,c,ts,amount\nA1,c1,2024-01-02,5\n")
    module = _check if command == "check" else _ingest
    seen: list[bool] = []
    stage = module.stage
    monkeypatch.setattr(module, "stage", lambda con, *a, **k: seen.append(
        con in _store._OPEN) or stage(con, *a, **k))
    source = Settings.load(tmp_path).sources[0]
    if command == "check":
        _check.check_source(source, tmp_path, n=5)
    else:
        _ingest.preflight(source, tmp_path / "tx.csv", tmp_path)
    assert seen == [True]


def test_ctrl_c_handler_stops_a_query_on_a_file_command_s_connection(tmp_path, monkeypatch):
    """The handler itself (not DuckDB's signal check, which is off outside the main thread)
    stops a query running on the in-memory DuckDB of `campaign effect --responses`."""
    monkeypatch.setattr(_interrupt, "INTERRUPTED", [False])  # the handler sets it
    con = _campaign_responses(tmp_path)
    outcome: list[BaseException | None] = []

    def query() -> None:
        try:
            con.execute(LONG).fetchall()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what ended it is the assertion
            outcome.append(exc)

    worker = threading.Thread(target=query, daemon=True)
    worker.start()
    try:
        end = time.monotonic() + 5
        while worker.is_alive() and time.monotonic() < end:  # until the query has started
            with pytest.raises(KeyboardInterrupt):
                _interrupt._on_sigint(signal.SIGINT, None)
            worker.join(0.05)
        assert not worker.is_alive(), "the handler did not stop the query"
    finally:
        con.interrupt()  # never leave the query running (a failing run)
        worker.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], duckdb.InterruptException), outcome
    assert con.execute("SELECT 42").fetchone() == (42,)  # the connection runs the next one
