"""Float ids (Parquet): whole numbers below 2^53 are ids; anything a double cannot hold
exactly, or that is not a whole number, is quarantined as ``invalid_id`` with its reason."""

from __future__ import annotations

import warnings

import pyarrow as pa
import pyarrow.parquet as pq
from sources_project import NOW

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store

TOML = """
[[sources]]
name = "crm"
table = "customers"
path = "customers.parquet"
[sources.columns]
customer_id = "id"
"""

#: id as the double the file holds -> the canonical id, or None (quarantined)
CASES = [
    (1.0, "1"),
    (-7.0, "-7"),
    (2.0**53 - 1, "9007199254740991"),  # the largest id below 2^53: exact
    (2.0**53, None),  # also what 2^53 + 1 becomes in a double: ambiguous
    (1e20, None),
    (2.5, None),
    (float("nan"), None),
    (float("inf"), None),
]


def test_float_ids_below_2_53_are_ids_and_the_rest_is_quarantined(tmp_path):
    (tmp_path / "segflow.toml").write_text(TOML)
    ids = [v for v, _ in CASES]
    pq.write_table(pa.table({"id": pa.array(ids, pa.float64()), "n": list(range(1, len(ids) + 1))}),
                   tmp_path / "customers.parquet")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    accepted = store.sql("SELECT source_row, customer_id FROM customers ORDER BY 1").to_pandas()
    want = [(row, out) for row, (_, out) in enumerate(CASES, start=1) if out is not None]
    assert list(accepted.itertuples(index=False, name=None)) == want
    quarantined = store.sql("SELECT row_number, rule, column_name, reason FROM quarantine "
                            "ORDER BY 1").to_pandas()
    assert list(quarantined.row_number) == [r for r, (_, out) in enumerate(CASES, 1) if out is None]
    assert set(quarantined.rule) == {"invalid_id"}
    assert set(quarantined.column_name) == {"id"}
    assert all("a float id must be a whole number below 2^53" in r for r in quarantined.reason)
    # 2^53 + 1 written as a double is 2^53: refused, not taken for the id 9007199254740992
    assert 2.0**53 + 1 == 2.0**53
