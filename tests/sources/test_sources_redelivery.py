"""A monthly file delivered again under its name with other content (orders deleted upstream,
an order id changed, an amount corrected, a bad row fixed): under ``redelivery = "keep"`` the
rows it no longer holds stay, counted and warned about; under ``"replace"`` the store equals
an ingest of the current files into a new store.

The expected counts are worked out from the edits below, not from segflow's output.
"""

from __future__ import annotations

import warnings

import duckdb
import pytest
from sources_project import NOW

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store

SOURCE = """
[[sources]]
name = "shop"
table = "transactions"
path = "exports"
{extra}
[sources.columns]
customer_id = "cust"
ts = "ts"
amount = "amount"
{id_column}
"""
KEYED = {"id_column": 'transaction_id = "id"', "extra": ""}
ROLLUP = {"id_column": 'transaction_id = "id"', "extra": "rollup = true"}
LINES = {"id_column": "", "extra": ""}  # lines without any id
HEADER = "id,cust,ts,amount\n"


def _orders(first: int, last: int, month: int) -> list[list[str]]:
    return [[str(i), f"c{i % 7}", f"2024-{month:02d}-{1 + i % 27:02d}", f"{10 + i % 9}.5"]
            for i in range(first, last + 1)]


def _csv(rows: list[list[str]], *, lines: int = 1) -> str:
    """``lines`` order lines per order (the roll-up variant), amounts split evenly."""
    out = [HEADER]
    for r in rows:
        for k in range(lines):
            amount = r[3] if lines == 1 or r[3] == "oops" else f"{float(r[3]) / lines + k:g}"
            out.append(",".join([r[0], r[1], r[2], amount]) + "\n")
    return "".join(out)


JAN, MAR = _orders(1, 10, 1), _orders(41, 50, 3)
FEB = _orders(11, 40, 2)
FEB[4][3] = "oops"  # order 15: quarantined (non-numeric amount)
#: February as exported again: orders 12, 20, 27, 33 and 39 deleted, order 25 renamed 25X,
#: order 30's amount corrected, order 15 fixed, order 51 added.
DELETED = {"12", "20", "27", "33", "39"}
FEB2 = [list(r) for r in FEB if r[0] not in DELETED]
for r in FEB2:
    if r[0] == "25":
        r[0] = "25X"
    if r[0] == "30":
        r[3] = "99.5"
    if r[0] == "15":
        r[3] = "15.5"
FEB2.append(["51", "c3", "2024-02-27", "12.5"])


def _write(root, variant: dict[str, str], files: dict[str, list[list[str]] | str],
           redelivery: str | None = None) -> None:
    extra = variant["extra"] + (f'\nredelivery = "{redelivery}"' if redelivery else "")
    (root / "segflow.toml").write_text(SOURCE.format(extra=extra, id_column=variant["id_column"]))
    (root / "exports").mkdir(exist_ok=True)
    lines = 2 if variant is ROLLUP else 1
    for name, rows in files.items():
        text = rows if isinstance(rows, str) else _csv(rows, lines=lines)
        if variant is LINES:  # no id column in the file
            text = "".join(ln.split(",", 1)[1] for ln in text.splitlines(keepends=True))
        (root / "exports" / name).write_text(text)


def _ingest(root, store):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = ingest(store, Settings.load(root), root, now=NOW)
    return report, [str(w.message) for w in caught]


def _state(store: Store) -> dict[str, list[tuple]]:
    """Every row the ingest writes, without the load ids and load times (a rebuild has others)."""
    out = {}
    for table, drop in (("transactions", "load_id"), ("quarantine", "load_id, ingested_at"),
                        ("ingest_duplicates", "load_id"), ("ingest_flags", "load_id")):
        rows = store.raw.execute(f"SELECT * EXCLUDE ({drop}) FROM {table}").fetchall()
        out[table] = sorted(rows, key=repr)
    return out


VARIANTS = {"keyed": KEYED, "rollup": ROLLUP, "lines": LINES}
#: Rows of February's first delivery that stay under "keep": with order ids, the 5 deleted
#: orders and order 25 (renamed); without ids, every one of its 29 stored lines (order 15
#: was quarantined), since the file changed other than by growing.
STALE = {"keyed": 6, "rollup": 6, "lines": 29}


@pytest.mark.parametrize("name", VARIANTS)
def test_keep_counts_and_warns_the_rows_left_behind(tmp_path, name):
    variant = VARIANTS[name]
    _write(tmp_path, variant, {"2024-01.csv": JAN, "2024-02.csv": FEB, "2024-03.csv": MAR})
    store = Store(":memory:")
    _ingest(tmp_path, store)
    _write(tmp_path, variant, {"2024-02.csv": FEB2})
    report, messages = _ingest(tmp_path, store)
    feb = report.to_pandas().set_index("source_file").loc["exports/2024-02.csv"]
    assert feb.rows_stale == STALE[name]
    why = {"keyed": "no row of it has their transaction_id",
           "rollup": "no row of it has their transaction_id",
           "lines": "its lines have no id: each was loaded again beside them"}[name]
    want = (f"file exports/2024-02.csv: delivered again with other content; {STALE[name]} rows "
            f"stored from its earlier delivery are not in it ({why}) and stay in the store; set "
            "redelivery = \"replace\" on source 'shop' to replace the file's rows (docs/data.md)")
    assert want in messages and want in report.warnings
    logged = store.sql("SELECT rows_stale FROM loads WHERE source_file = 'exports/2024-02.csv' "
                       "ORDER BY started_at")["rows_stale"].to_pylist()
    assert logged == [0, STALE[name]]
    # the stale rows are really in the store: 10 + 29 + 10 orders first, then 3 new (15 now
    # valid, 25X, 51); without ids, every line of the new delivery again: 26
    n = store.sql("SELECT count(*) AS n FROM transactions")["n"][0].as_py()
    assert n == {"keyed": 52, "rollup": 52, "lines": 75}[name]


def test_the_stale_rows_are_listed_by_the_query_of_the_docs(tmp_path):
    _write(tmp_path, KEYED, {"2024-01.csv": JAN, "2024-02.csv": FEB})
    store_file = tmp_path / "segflow.duckdb"
    store = Store(store_file)
    _ingest(tmp_path, store)
    _write(tmp_path, KEYED, {"2024-02.csv": FEB2})
    _ingest(tmp_path, store)
    store.close()
    con = duckdb.connect(str(store_file), read_only=True)
    try:  # the query of docs/data.md, from the project folder
        con.execute(f"SET file_search_path = '{tmp_path}'")
        rows = con.execute(
            "SELECT * FROM transactions WHERE source = 'shop' AND source_file = "
            "'exports/2024-02.csv' AND transaction_id NOT IN (SELECT id FROM "
            "read_csv('exports/2024-02.csv', all_varchar = true))").fetchall()
    finally:
        con.close()
    assert sorted(r[0] for r in rows) == sorted(DELETED | {"25"})


@pytest.mark.parametrize("name", VARIANTS)
def test_replace_makes_the_store_equal_a_new_store_of_the_current_files(tmp_path, name):
    variant = VARIANTS[name]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write(tmp_path / "a", variant, {"2024-01.csv": JAN, "2024-02.csv": FEB, "2024-03.csv": MAR},
           redelivery="replace")
    store = Store(":memory:")
    _ingest(tmp_path / "a", store)
    stored_before = store.sql("SELECT count(*) AS n FROM transactions WHERE source_file = "
                              "'exports/2024-02.csv'")["n"][0].as_py()
    assert stored_before == 29  # 30 orders (lines: 30 lines), order 15 quarantined
    _write(tmp_path / "a", variant, {"2024-02.csv": FEB2}, redelivery="replace")
    report, messages = _ingest(tmp_path / "a", store)
    feb = report.to_pandas().set_index("source_file").loc["exports/2024-02.csv"]
    assert (feb.rows_read, feb.rows_stale) == ((26 * 2 if variant is ROLLUP else 26), 0)
    assert ("file exports/2024-02.csv: delivered again with other content; the 29 rows its "
            "earlier delivery stored were removed, and this delivery loaded in their place "
            "(redelivery = \"replace\")") in messages
    # a new store of the current files
    _write(tmp_path / "b", variant, {"2024-01.csv": JAN, "2024-02.csv": FEB2, "2024-03.csv": MAR},
           redelivery="replace")
    rebuilt = Store(":memory:")
    _ingest(tmp_path / "b", rebuilt)
    assert _state(store) == _state(rebuilt)
    assert len(_state(store)["transactions"]) == 10 + 26 + 10
    statuses = store.sql("SELECT status FROM loads WHERE source_file = 'exports/2024-02.csv' "
                         "ORDER BY started_at")["status"].to_pylist()
    assert statuses == ["replaced", "ok"]
    # and the first delivery again: its bytes were replaced, so they load (and replace) again
    _write(tmp_path / "a", variant, {"2024-02.csv": FEB}, redelivery="replace")
    again, _ = _ingest(tmp_path / "a", store)
    assert again.to_pandas().set_index("source_file").loc["exports/2024-02.csv", "status"] == "loaded"
    first = Store(":memory:")
    _write(tmp_path / "b", variant, {"2024-02.csv": FEB}, redelivery="replace")
    _ingest(tmp_path / "b", first)
    assert _state(store) == _state(first)


@pytest.mark.parametrize("redelivery", ["keep", "replace"])
def test_a_month_delivered_again_without_rows(tmp_path, redelivery):
    """February again as a header only: every row it stored is stale (keep) or removed."""
    _write(tmp_path, KEYED, {"2024-01.csv": JAN, "2024-02.csv": FEB}, redelivery=redelivery)
    store = Store(":memory:")
    _ingest(tmp_path, store)
    _write(tmp_path, KEYED, {"2024-02.csv": HEADER}, redelivery=redelivery)
    report, messages = _ingest(tmp_path, store)
    feb = report.to_pandas().set_index("source_file").loc["exports/2024-02.csv"]
    assert (feb.status, feb.rows_read) == ("empty", 0)
    assert "file exports/2024-02.csv has a header but no data rows; loaded as 0 rows" in messages
    left = store.sql("SELECT count(*) AS n FROM transactions")["n"][0].as_py()
    if redelivery == "keep":
        assert feb.rows_stale == 29 and left == 10 + 29
        assert any("29 rows stored from its earlier delivery are not in it (it has no rows)" in m
                   for m in messages)
    else:
        assert feb.rows_stale == 0 and left == 10
        assert store.sql("SELECT count(*) AS n FROM quarantine")["n"][0].as_py() == 0


def test_replace_warns_when_the_files_of_the_source_overlap(tmp_path):
    """March restates February's orders 38 (corrected), 39 and 40: with overlapping files a
    replaced delivery is not what a new store would hold, and the load says so."""
    mar = [*_orders(38, 40, 2), *MAR]
    mar[0][3] = "77.5"
    _write(tmp_path, KEYED, {"2024-01.csv": JAN, "2024-02.csv": FEB, "2024-03.csv": mar},
           redelivery="replace")
    store = Store(":memory:")
    _ingest(tmp_path, store)
    _write(tmp_path, KEYED, {"2024-02.csv": FEB2}, redelivery="replace")
    _, messages = _ingest(tmp_path, store)
    # February's 39 and 40 went with its first delivery (March's copies were logged as
    # duplicates: 2); the new delivery's 38 meets March's correction (1)
    assert ("file exports/2024-02.csv: files of source 'shop' restate each other's rows (1 rows "
            "of this delivery restate rows of other files; 2 rows of other files were duplicates "
            "of rows loaded before them), so the store may differ from an ingest of the current "
            "files into a new store: the latest load wins a restated row, and rows shared with "
            "the removed delivery are not brought back (docs/data.md)") in messages
    ids = set(store.sql("SELECT transaction_id FROM transactions")["transaction_id"].to_pylist())
    assert "39" not in ids  # the documented limit: March still has it, a new store would too


def test_the_remedy_replace_and_force_removes_the_stale_rows(tmp_path):
    """Stale rows left under "keep" go once the source says "replace" and ingest re-reads
    its files (--force): the store then equals a new store of the current files."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write(tmp_path / "a", KEYED, {"2024-01.csv": JAN, "2024-02.csv": FEB, "2024-03.csv": MAR})
    store = Store(":memory:")
    _ingest(tmp_path / "a", store)
    _write(tmp_path / "a", KEYED, {"2024-02.csv": FEB2})
    _ingest(tmp_path / "a", store)
    assert len(_state(store)["transactions"]) == 10 + 29 + 10 + 3  # 6 of them stale
    _write(tmp_path / "a", KEYED, {}, redelivery="replace")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(tmp_path / "a"), tmp_path / "a", now=NOW, force=True)
    _write(tmp_path / "b", KEYED, {"2024-01.csv": JAN, "2024-02.csv": FEB2, "2024-03.csv": MAR},
           redelivery="replace")
    rebuilt = Store(":memory:")
    _ingest(tmp_path / "b", rebuilt)
    assert _state(store) == _state(rebuilt)
    assert len(_state(store)["transactions"]) == 10 + 26 + 10
