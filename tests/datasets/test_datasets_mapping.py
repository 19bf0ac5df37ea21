"""The demo segflow.toml parses, and its sources describe the generated files."""

from __future__ import annotations

import tomllib

import pandas as pd

from segflow.config import Settings
from segflow.datasets import TRANSACTION_DATE_FORMATS, demo_project_toml, demo_sources


def test_project_toml_parses_to_the_demo_sources(tmp_path):
    text = demo_project_toml("data")
    (tmp_path / "segflow.toml").write_text(text)
    settings = Settings.load(tmp_path)
    assert settings.sources == demo_sources("data")
    assert settings.periods.granularity == "month"
    assert [s.name for s in settings.schemes] == ["rfm", "lifecycle", "value_tiers", "browse_no_buy",
                                                  "product_breadth", "price_vs_quality"]
    from segflow.segments import product_breadth_scheme, psychographic_example_scheme

    # the demo lists the built-in breadth scheme and the documented psychographic example
    assert settings.schemes[4:] == [product_breadth_scheme(), psychographic_example_scheme()]
    assert "#" in text and tomllib.loads(text)["project"]["name"]


def test_export_date_reaches_every_source(tmp_path):
    import datetime as dt

    end = dt.date(2026, 1, 1)
    (tmp_path / "segflow.toml").write_text(demo_project_toml("data", max_date=end))
    settings = Settings.load(tmp_path)
    assert settings.sources == demo_sources("data", max_date=end)
    assert {s.max_date for s in settings.sources} == {end}


def test_sources_map_every_column_of_the_files(demo_dir):
    sources = demo_sources(demo_dir)
    assert [s.table for s in sources] == [
        "customers", "transactions", "events", "campaign_exposures", "survey_responses"]
    for src in sources:
        header = pd.read_csv(src.path, nrows=0).columns
        assert set(src.columns.values()) == set(header), src.name
        assert src.format == "csv"
    orders = sources[1]
    assert orders.date_formats == list(TRANSACTION_DATE_FORMATS)
    assert orders.columns["transaction_id"] == "order_id"
    assert orders.credit_note_prefix == "R"
    crm = sources[0]
    codes = set(pd.read_csv(crm.path, usecols=["gender"], dtype=str)["gender"].dropna())
    assert set(crm.value_maps["gender"]) == {"F", "M", "X"}
    assert codes - set(crm.value_maps["gender"]) == {"U"}  # the injected invalid code
    assert set(crm.value_maps["gender"].values()) == {"female", "male", "other"}


def test_parquet_sources_point_at_the_parquet_files(tmp_path, demo_dir):
    sources = demo_sources(demo_dir, file_format="parquet")
    assert all(s.format == "parquet" and s.path.endswith(".parquet") for s in sources)
    for src, csv_src in zip(sources, demo_sources(demo_dir), strict=True):
        assert src.columns == csv_src.columns
        assert pd.read_parquet(src.path).columns.tolist() == list(
            pd.read_csv(csv_src.path, nrows=0).columns)
    (tmp_path / "segflow.toml").write_text(demo_project_toml("data", file_format="parquet"))
    assert Settings.load(tmp_path).sources == demo_sources("data", file_format="parquet")
