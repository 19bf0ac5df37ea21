"""Row numbers of quarantined and loaded rows are their lines in the file, also when DuckDB
reads a large CSV file with two threads on a connection that does not keep insertion order
(segflow.sources._readers.in_file_order)."""

from __future__ import annotations

import warnings

from sources_project import NOW, ORDERS_TOML

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store

N = 50_000
BAD_AMOUNT = (7, 31_999, 49_998)  # a value that is not a number
BAD_RECORD = 20_000  # a field too many: DuckDB's reader rejects the line itself


def test_bad_rows_of_a_large_file_read_by_two_threads(tmp_path):
    # ~6 MB: under a 32 MB memory limit DuckDB reads it in 4 MB buffers (csv_buffer_sizes),
    # two threads at a time
    note = "n" * 80
    lines = ["order_id,customer,date,amount,note"]
    for i in range(1, N + 1):
        amount = "ten" if i in BAD_AMOUNT else f"{i % 100}.25"
        extra = ",surplus" if i == BAD_RECORD else ""
        lines.append(f"{i},C{i % 997},2024-01-02,{amount},{note}{extra}")
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "segflow.toml").write_text(ORDERS_TOML)
    store = Store(":memory:", memory_limit="32MB")
    store.raw.execute("SET threads = 2")
    store.raw.execute("SET GLOBAL preserve_insertion_order = false")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    quarantined = store.raw.execute(
        "SELECT row_number, column_name, regexp_extract(raw_row, '[0-9]+') FROM quarantine "
        "ORDER BY row_number").fetchall()
    assert [(r, c) for r, c, _ in quarantined] == [
        (7, "amount"), (BAD_RECORD, None), (31_999, "amount"), (49_998, "amount")]
    assert all(str(r) == first for r, _, first in quarantined), quarantined  # order_id
    # every loaded row: its source row is the row number written in it
    n, wrong = store.raw.execute(
        "SELECT count(*), count(*) FILTER (WHERE CAST(transaction_id AS BIGINT) <> source_row) "
        "FROM transactions").fetchone()
    assert (n, wrong) == (N - 4, 0)
