"""A messy real-world export on the two-worker cluster and on DuckDB: the same results, and the
right ones (tests/spark/_messy.py holds the files; every expected value below was worked out
by hand or with Python's ``decimal`` from the amounts as written).

One project folder, ingested and run by DuckDB and by ``[engine] kind = "spark"`` on the
cluster (one Spark ingest and one Spark run for the module); then everything both produced is
compared: the reconciliation and quarantine reasons per row, the canonical tables, the audit,
every scheme's assignments and change rows, the latest features, the segment and transition
aggregates (money exactly), the profiles, the stored documents, the fitted models, the scores
(to 1e-6: the fits run on the driver from the same triples in another order) and the export
files (byte for byte).

Each divergence these inputs exposed (session 50) has its check here:

- a Parquet file with nanosecond timestamps (pandas' default) stopped the Spark ingest
  ("Illegal Parquet type: INT64 (TIMESTAMP(NANOS,false))");
- DuckDB's cast of a double to ``decimal(38, 6)`` is not the double's decimal from about 1e8
  (1,234,567,890,123.45 became ...123.449856): the features' and the aggregates' exact money
  sums then differed from Spark's (and from the amounts as written);
- profile means of values that cancel (+2e12 and -2e12) differed in the 7th digit;
- the gaps' float standard deviation behind ``ipt_cv`` differed in the last bit (a rule on
  it put a customer in different segments);
- the audit's examples among tied amounts, the forecasts document's key order and the
  export's row order were the engine's.
"""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from tests.spark import _messy as m
from tests.spark._compare import same_rows as _same
from typer.testing import CliRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DATABASE = "messy_export"  # not test_warehouse_ingest.py's "messy": one cluster warehouse
LATEST = pd.Timestamp("2024-12-01")
SCHEMES = ["rfm", "rfm_ntile", "lifecycle", "value_tiers", "named", "orders_so_far", "clusters"]


@pytest.fixture(scope="module")
def messy(tmp_path_factory, cluster, _cluster_spark):
    """The project ingested and run on DuckDB and on the cluster: (project, warehouse store,
    {customer: amounts as written}, DuckDB's and Spark's ingest reports)."""
    from segflow.project import Project
    from segflow.store._spark import SparkStore

    folder = tmp_path_factory.mktemp("messy")
    written = m.build(folder)
    warehouse = _cluster_spark.conf.get("spark.sql.warehouse.dir")
    conf = "\n".join(f'"{k}" = "{v}"' for k, v in cluster.session_conf().items())
    engine = (f'\n[engine]\nkind = "spark"\nmaster = "{cluster.master_url}"\n'
              f'warehouse = "{warehouse}"\ndatabase = "{DATABASE}"\n[engine.conf]\n{conf}\n')
    project = Project.init(folder, toml_text=m.TOML + engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the data's defects are warned about on purpose
        duck = project.ingest(engine="duckdb")
        project.run(engine="duckdb")
        spark = project.ingest(engine="spark")
        project.run(engine="spark")
    store = SparkStore(_cluster_spark, warehouse, DATABASE)
    yield project, store, written, duck, spark
    project.close()


def _duck(project, table: str) -> pd.DataFrame:
    return project.store.raw.execute(f'SELECT * FROM "{table}"').df()



def test_ingest_on_the_cluster_equals_duckdb_and_the_hand_counts(messy):
    project, store, _, duck, spark = messy
    cols = ["source", "rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate",
            "rows_anonymous", "rows_flagged"]
    d = duck.to_pandas()[cols].sort_values("source", ignore_index=True)
    s = spark.to_pandas()[cols].sort_values("source", ignore_index=True)
    pd.testing.assert_frame_equal(s, d, check_dtype=False)
    lines = (project.directory / "data" / "orders.csv").read_text().count("\n") - 1
    quarantined = sum(n for (src, _), n in m.WANT_RULES.items() if src == "orders")
    want = {**m.WANT_LOADS, "orders": (lines, lines - quarantined - 3, quarantined, 3)}
    got = {r.source: (r.rows_read, r.rows_accepted, r.rows_quarantined, r.rows_duplicate)
           for r in d.itertuples()}
    assert got == want
    assert {r.source: r.rows_anonymous for r in d.itertuples()} == {"crm": 0, "orders": 2, "refunds": 1}
    for report in (duck, spark):
        assert {(r.source, r.rule): r.rows for r in report.rules().itertuples()} == m.WANT_RULES
    # every row: canonical tables, quarantine (raw rows and reasons), duplicates, flags
    keys = {"customers": ["source", "source_row"], "transactions": ["source", "source_row"],
            "quarantine": ["source", "row_number"], "ingest_duplicates": ["source", "row_number"],
            "ingest_flags": ["source", "row_number", "rule"], "loads": ["source"]}
    read = {table: store.table(table).to_pandas() for table in keys}  # one Spark read each
    for table, key in keys.items():
        assert _same(table, _duck(project, table), read[table], key) > 0
    # the refunds, a Parquet file with nanosecond timestamps, in UTC (Berlin: +1 in winter,
    # +2 in summer; 02:30 on 31 March is read before the change, on 27 October after it)
    tx = read["transactions"]
    refunds = tx[tx.source == "refunds"].sort_values("transaction_id")
    assert refunds.ts.tolist() == [pd.Timestamp(r[4]) for r in m.REFUNDS]
    assert refunds.amount.tolist() == [-float(r[3]) for r in m.REFUNDS]
    ids = set(tx.customer_id.dropna())
    assert m.W in ids and all(len(c) == 22 and c.startswith("00") for c in ids)
    # the audit, stored by each ingest: equal, the date it was taken aside
    audit = {"duck": _duck(project, "summary_audit"), "spark": store.table("summary_audit").to_pandas()}
    for name, frame in audit.items():  # the audit's date (today) aside
        audit[name] = frame.drop(columns="as_of").assign(advice=frame["advice"].str.replace(
            r"\d{4}-\d{2}-\d{2}", "<date>", regex=True))
    _same("summary_audit", audit["duck"], audit["spark"], ["check", "table"])
    # outliers: the largest amounts first; among equal amounts the smallest order numbers
    # (W's three orders 00100006-8, then two of the three 1e12 orders: A's 00100001-2)
    outliers = audit["spark"].set_index("check").loc["amount_outliers", "examples"]
    assert outliers == "; ".join(
        [f"transaction_id=0010000{i}, amount=1234567890123.45" for i in (6, 7, 8)]
        + [f"transaction_id=0010000{i}, amount=1000000000000.0" for i in (1, 2)])


def test_run_on_the_cluster_equals_duckdb_and_the_hand_values(messy):
    project, store, written, _, _ = messy
    key = ["scheme", "snapshot_date", "customer_id"]
    a = store.table("segment_assignments").to_pandas()
    assert _same("segment_assignments", _duck(project, "segment_assignments"), a, key) > 500
    assert sorted(set(a.scheme)) == sorted(SCHEMES)
    a = a.set_index(key)["segment"]

    def path(scheme: str, customer: str) -> list[str]:
        return a.loc[scheme].xs(customer, level="customer_id").sort_index().tolist()

    # G's gaps give ipt_cv = sqrt(7340 / 30) / (238 / 6) from its 7th purchase (27 August)
    # on, the rule's literal exactly: Steady at September to December, on both engines
    assert path("named", m.G) == ["Other"] * 7 + ["Steady"] * 4
    # E's orders at 23:59:59 and 00:00:00 UTC on 30 April / 1 May: one before May's
    # snapshot, both before June's; N1, first seen on 31 March (21:59:59 UTC), is at April's
    assert path("orders_so_far", m.E) == ["None"] * 3 + ["Once"] + ["Repeat"] * 7
    assert path("orders_so_far", m.N1) == ["Once"] * 9
    for table, k in [("segment_spells", ["scheme", "customer_id", "valid_from"]),
                     ("segment_snapshots", ["scheme", "snapshot_date"])]:
        _same(table, _duck(project, table), store.table(table).to_pandas(), k)
    features = _duck(project, "customer_features")
    spark_features = store.table("customer_features").to_pandas()
    _same("customer_features", features, spark_features, ["customer_id"])
    monetary = spark_features.set_index("customer_id")["monetary"]
    # W: three orders of 1,234,567,890,123.45 (DuckDB's own cast made each ...123.449856)
    assert monetary[m.W] == float(m.exact(written[m.W])) == 3703703670370.35
    assert monetary[m.A] == 2000000000000.1 and monetary[m.B] == -1999999999999.8
    # aggregates: every cell, money exactly; the Whales (W and H) hold the exact sum
    seg = store.table("summary_segments").to_pandas()
    _same("summary_segments", _duck(project, "summary_segments"), seg,
          ["scheme", "snapshot_date", "segment"], rtol={"mean_p_alive": 1e-6})
    whales = seg[(seg.scheme == "named") & (seg.segment == "Whale")
                 & (pd.to_datetime(seg.snapshot_date) == LATEST)].iloc[0]
    want = float(m.exact(written[m.W]) + m.exact(written[m.H]))  # 4,704,703,670,381.819134
    assert whales.revenue_all_time == whales.revenue_12m == want
    assert _same("summary_transitions", _duck(project, "summary_transitions"),
                 store.table("summary_transitions").to_pandas(),
                 ["scheme", "from_date", "to_date", "from_segment", "to_segment"]) > 100
    # profiles: Zentrum is A (+2e12 + 0.1), B (-2e12 + 0.2) and C (0.3): mean 0.6 / 3
    prof = store.table("summary_profiles").to_pandas()
    _same("summary_profiles", _duck(project, "summary_profiles"), prof,
          ["scheme", "snapshot_date", "segment", "feature"])
    zentrum = prof[(prof.scheme == "named") & (prof.segment == "Zentrum")].set_index("feature")
    assert zentrum.loc["monetary", "mean"] == zentrum.loc["monetary_12m", "mean"] == 0.2
    _same("summary_profile_segments", _duck(project, "summary_profile_segments"),
          store.table("summary_profile_segments").to_pandas(), ["scheme", "snapshot_date", "segment"])
    # the stored documents (CLV diagnostics, campaigns, overview, forecasts): the same text
    results = store.table("summary_results").to_pandas()
    docs = _same("summary_results", _duck(project, "summary_results"), results, ["name"])
    assert docs == 4
    forecasts = results.set_index("name").loc["forecasts", "document"]
    assert list(json.loads(forecasts)) == sorted(SCHEMES)
    for table, k in [("model_params", ["model"]), ("cluster_models", ["scheme"])]:
        _same(table, _duck(project, table), store.table(table).to_pandas(), k)
    # scores: P(alive), P(no purchase) and expected purchases of every customer (no CLV:
    # Gamma-Gamma cannot be fitted with the whales' spend)
    scores = store.table("customer_scores").to_pandas()
    assert _same("customer_scores", _duck(project, "customer_scores"), scores,
                 ["model", "snapshot_date", "customer_id", "score"], rtol={"value": 1e-6}) \
        == 3 * len(features)
    assert sorted(set(scores.score)) == ["expected_purchases", "p_alive", "p_no_purchase"]


def test_exports_are_the_same_files_in_customer_order(messy, tmp_path):
    """``segflow export --out`` of the Spark project (from the warehouse's change rows) and
    the same export of the DuckDB store: one file, byte for byte, ids in order."""
    from segflow.cli import app
    from segflow.exports import segment_list, write_segment_list

    project, *_ = messy
    runner = CliRunner()
    for scheme in SCHEMES:
        duck, spark = tmp_path / f"{scheme}-duckdb.csv", tmp_path / f"{scheme}-spark.csv"
        write_segment_list(segment_list(project.store.table("segment_assignments"), scheme), duck)
        result = runner.invoke(app, ["export", "--out", str(spark), "-s", scheme, "-p",
                                     str(project.directory)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert spark.read_bytes() == duck.read_bytes(), scheme
        ids = [line.split(",")[0] for line in duck.read_text().splitlines()[1:]]
        assert len(ids) == m.FILLER + 11 and ids == sorted(ids), scheme  # every customer
