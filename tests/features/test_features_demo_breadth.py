"""Product breadth on the demo data: the generated product ids reach the features (checked
against pandas on the generator's own file), and the built-in breadth scheme only ever moves
customers towards more products."""

from __future__ import annotations

import datetime as dt
import warnings

import pandas as pd
import pytest

from segflow.features import REQUIRED_TABLES, customer_features
from segflow.segments import assign, product_breadth_scheme


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    folder = tmp_path_factory.mktemp("demo")
    ds = generate_demo(folder / "data", customers=1000, months=24, seed=3, formats=("parquet",))
    toml = demo_project_toml(folder / "data", file_format="parquet", max_date=ds.end)
    project = Project.init(folder / "proj", toml_text=toml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
        project.ingest()
    tables = {n: project.store.table(n) for n in REQUIRED_TABLES}
    stored = project.store.sql("SELECT * FROM transactions").to_pandas()
    yield ds, tables, stored
    project.close()


def test_products_total_matches_pandas_on_the_stored_demo_lines(demo):
    ds, tables, tx = demo
    s = ds.end - dt.timedelta(days=200)
    got = customer_features(tables, s, groups={"breadth"}).to_pandas().set_index("customer_id")
    ts = pd.Timestamp(s)
    buys = tx[(tx.ts < ts) & ~tx.is_return.fillna(False).astype(bool) & (tx.amount >= 0)
              & tx.customer_id.notna()]
    want = buys.groupby("customer_id").product_id.nunique()
    want12 = buys[buys.ts >= ts - pd.Timedelta(days=365)].groupby("customer_id").product_id.nunique()
    have = got.products_total.dropna().astype(int)
    assert len(have) > 500 and tx.product_id.notna().mean() > 0.95
    pd.testing.assert_series_equal(have.sort_index(), want.sort_index(), check_names=False)
    got12 = got.products_12m.reindex(want.index).astype(int)
    pd.testing.assert_series_equal(got12, want12.reindex(want.index).fillna(0).astype(int),
                                   check_names=False)


def test_breadth_migration_only_broadens(demo):
    ds, tables, _ = demo
    early, late = ds.end - dt.timedelta(days=365), ds.end
    scheme = product_breadth_scheme()

    def ranks(day: dt.date) -> pd.Series:
        out = assign(scheme, customer_features(tables, day, groups={"breadth"})).to_pandas()
        return out.set_index("customer_id").segment_rank

    before, after = ranks(early), ranks(late)
    both = pd.concat([before.rename("a"), after.rename("b")], axis=1, join="inner")
    bought = both[both.a < 4]  # rank 4: No product data
    assert (bought.b <= bought.a).all()  # never back to fewer products
    broadened = int((bought.b < bought.a).sum())
    assert broadened >= 20, broadened  # one-product buyers come back for other products
