"""Forecasts, audiences, profiles and CLV moved: JSON twins checked against independent
computations on the store, CSV/Parquet downloads, roles and paging."""

from __future__ import annotations

import hashlib
import io

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest


def _sql(directory, query, params=()):
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    try:
        return con.execute(query, list(params)).df()
    finally:
        con.close()


def test_forecast_is_one_markov_step_of_the_pooled_transitions(viewer, served_project):
    r = viewer.get("/api/v1/forecasts/rfm", params={"periods": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    frame = pd.DataFrame(body["data"])
    dates = _sql(served_project, "SELECT DISTINCT snapshot_date FROM segment_assignments WHERE scheme = 'rfm' "
                 "ORDER BY 1")["snapshot_date"].dt.date.tolist()
    assert body["meta"]["from_snapshot"] == str(dates[-1]) and body["meta"]["pairs_pooled"] == len(dates) - 1
    # independent: pooled counts over consecutive pairs, row-normalised, one step from the latest sizes
    counts: dict[tuple[str, str], int] = {}
    for a, b in zip(dates, dates[1:], strict=False):
        pairs = _sql(served_project,
                     "SELECT coalesce(x.segment, '(new)') f, coalesce(y.segment, '(gone)') t, count(*) n FROM "
                     "(SELECT * FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = ?) x FULL JOIN "
                     "(SELECT * FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = ?) y USING (customer_id) "
                     "GROUP BY ALL", [a, b])
        for f, t, n in pairs.itertuples(index=False):
            counts[(f, t)] = counts.get((f, t), 0) + int(n)
    states = sorted({f for f, _ in counts if f != "(new)"} | {t for _, t in counts if t != "(gone)"})
    now = _sql(served_project, "SELECT segment, count(*) n FROM segment_assignments WHERE scheme = 'rfm' AND "
               "snapshot_date = ? GROUP BY 1", [dates[-1]]).set_index("segment")["n"]
    new = sum(n for (f, _), n in counts.items() if f == "(new)") / (len(dates) - 1)
    entry = {t: n for (f, t), n in counts.items() if f == "(new)"}
    for target in states:
        expected = 0.0
        for source in states:
            row = {t: n for (f, t), n in counts.items() if f == source}
            if row:
                expected += now.get(source, 0) * row.get(target, 0) / sum(row.values())
        if entry:
            expected += new * entry.get(target, 0) / sum(entry.values())
        got = frame[(frame["period"] == 1) & (frame["segment"] == target)]["expected_customers"]
        assert len(got) == 1 and np.isclose(got.iloc[0], expected, rtol=1e-9), (target, got, expected)
        start = frame[(frame["period"] == 0) & (frame["segment"] == target)]["expected_customers"].iloc[0]
        assert start == now.get(target, 0)
    one = viewer.get("/api/v1/forecasts/rfm", params={"periods": 2, "segment": "Champions", "limit": 2})
    assert one.json()["count"] == 2 and one.json()["total"] == 3
    assert {d["segment"] for d in one.json()["data"]} == {"Champions"}
    csv = viewer.get("/api/v1/forecasts/rfm", params={"format": "csv"})
    assert csv.status_code == 200 and csv.text.startswith('"period","snapshot_estimate","segment"')
    page = viewer.get("/forecasts/rfm", headers={"accept": "text/html"})
    assert page.status_code == 200 and "Forecast: rfm" in page.text and "plotly" in page.text


def test_audience_from_a_segment_and_from_a_rule(analyst, viewer, anon, served_project):
    latest = _sql(served_project, "SELECT max(snapshot_date) d FROM segment_assignments")["d"].iloc[0].date()
    members = set(_sql(served_project, "SELECT customer_id FROM segment_assignments WHERE scheme = 'lifecycle' AND "
                       "snapshot_date = ? AND segment = 'one-time'", [latest])["customer_id"])
    assert members
    params = {"scheme": "lifecycle", "segment": "one-time", "holdout": 0.3, "seed": "s1", "limit": 5}
    r = analyst.get("/api/v1/audiences", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(members) == body["meta"]["customers"] and body["count"] == min(5, len(members))
    # the hold-out flag: SHA-256 of seed:id below the share, computed independently
    full = analyst.get("/api/v1/audiences", params={**params, "format": "parquet"})
    assert full.status_code == 200 and ".parquet\"; filename*=UTF-8''" in full.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(full.content)).to_pandas()
    assert set(table["customer_id"]) == members
    for cid, flag in zip(table["customer_id"], table["holdout"], strict=True):
        draw = int.from_bytes(hashlib.sha256(f"s1:{cid}".encode()).digest()[:8], "big") / 2**64
        assert bool(flag) == (draw < 0.3)
    assert body["meta"]["holdout_customers"] == int(table["holdout"].sum())
    assert body["meta"]["target_customers"] + body["meta"]["holdout_customers"] == len(members)
    revenue = _sql(served_project, "SELECT sum(monetary_12m) v FROM customer_features WHERE customer_id IN "
                   f"({', '.join(repr(m) for m in members)})")["v"].iloc[0]
    assert np.isclose(body["meta"]["revenue_12m"], revenue)
    csv = analyst.get("/api/v1/audiences", params={**params, "format": "csv"})
    assert csv.text.splitlines()[0] == '"customer_id","scheme","segment","snapshot","revenue_12m","clv","holdout"'
    assert len(csv.text.splitlines()) == len(members) + 1
    # a rule over the latest features
    rule = analyst.get("/api/v1/audiences", params={"rule": "monetary_12m >= 200 and frequency >= 2", "limit": 1000})
    want = set(_sql(served_project, "SELECT customer_id FROM customer_features WHERE monetary_12m >= 200 AND "
                    "frequency >= 2")["customer_id"])
    assert {d["customer_id"] for d in rule.json()["data"]} == want and want
    bad = analyst.get("/api/v1/audiences", params={"rule": "monetary_1m >= 200"})
    assert bad.status_code == 422 and "did you mean 'monetary_12m'" in bad.json()["detail"]
    both = analyst.get("/api/v1/audiences", params={"rule": "frequency > 1", "scheme": "rfm", "segment": "Lost"})
    assert both.status_code == 422
    for extra in ({"scheme": "rfm"}, {"snapshot": "2024-01-01"}):  # were dropped without a word
        alone = analyst.get("/api/v1/audiences", params={"rule": "frequency > 1", **extra})
        assert alone.status_code == 422 and "latest snapshot's features" in alone.json()["detail"]
    # customer-level: viewers and anonymous callers are refused; the page builds and links downloads
    assert viewer.get("/api/v1/audiences", params=params).status_code == 403
    assert anon.get("/api/v1/audiences", params=params).status_code == 401
    page = analyst.get("/audiences", params={"scheme": "lifecycle", "segment": "one-time"},
                       headers={"accept": "text/html"})
    assert page.status_code == 200 and f"{len(members):,} customers" in page.text and 'id="audience-parquet"' in page.text


def test_value_moved_and_profiles(viewer, served_project):
    r = viewer.get("/api/v1/migration/rfm/value")
    assert r.status_code == 200
    moved = pd.DataFrame(r.json()["data"])
    matrix = pd.DataFrame(viewer.get("/api/v1/migration/rfm").json()["data"])
    merged = matrix.merge(moved, on=["from_segment", "to_segment"], suffixes=("", "_moved"))
    assert len(merged) == len(matrix[matrix["customers"] > 0])
    assert (merged["customers"] == merged["customers_moved"]).all()
    prof = viewer.get("/api/v1/profiles/rfm").json()
    sizes = pd.DataFrame(viewer.get("/api/v1/segments/rfm").json()["data"])
    sizes = sizes[sizes["customers"] > 0]  # a segment that emptied has no profile
    got = {d["segment"]: d["size"] for d in prof["data"]}
    assert got == dict(zip(sizes["segment"], sizes["customers"], strict=True))
    assert viewer.get("/api/v1/profiles/rfm", params={"snapshot": "2024-02-01"}).status_code == 404
    page = viewer.get("/segments/rfm", headers={"accept": "text/html"})
    assert 'id="profiles"' in page.text
    page = viewer.get("/migration/rfm", headers={"accept": "text/html"})
    assert "CLV moved" in page.text


def test_unknown_paths_are_404_without_a_token(anon):
    for path in ("/no/such/page", "/api/v1/no-such-thing", "/wp-login.php"):
        r = anon.get(path)
        assert r.status_code == 404, path


def test_download_names_from_the_data_make_a_valid_header():
    """A campaign or scheme id of any script (a header value must be Latin-1: 春季促销 made
    the CSV download an HTTP 500) or with quotes gives an ASCII name and the exact one."""
    from urllib.parse import unquote

    from fastapi.responses import Response

    from segflow.server._security import attachment

    for name in ("campaign-春季促销.csv", 'a"b;c.csv', "plain-2024.csv"):
        header = attachment(name)
        Response(b"x", headers={"content-disposition": header})  # encodes as Latin-1
        plain, exact = header.split("; filename*=UTF-8''")
        assert plain.startswith('attachment; filename="') and plain.count('"') == 2
        assert plain.isascii() and unquote(exact) == name
    assert attachment("plain-2024.csv").startswith('attachment; filename="plain-2024.csv"')


@pytest.mark.parametrize("rule, message", [
    ("(" * 3000 + "frequency > 1" + ")" * 3000, "nests more than"),
    ("not " * 3000 + "frequency > 1", "nests more than"),
    ("frequency in (99999999999999999999)", "out of range"),
    ("frequency * 9223372036854775807 > 1", "cannot be evaluated"),
    ("9223372036854775807 + 1 < frequency", "cannot be evaluated"),
], ids=["brackets", "not", "big-integer", "product-overflow", "sum-overflow"])
def test_audience_rules_that_cannot_run_are_a_clean_422(analyst, rule, message):
    """Each of these answered 500 (RecursionError, TypeError, DuckDB's overflow error)."""
    r = analyst.get("/api/v1/audiences", params={"rule": rule})
    assert r.status_code == 422, r.text[:300]
    assert message in r.json()["detail"]


def test_audience_rule_of_many_alternatives_answers(analyst):
    """1,500 alternatives (a RecursionError in the SQL compiler before) are one audience."""
    many = analyst.get("/api/v1/audiences", params={"rule": "frequency > 1" + " or frequency > 1" * 1500})
    one = analyst.get("/api/v1/audiences", params={"rule": "frequency > 1"})
    assert many.status_code == one.status_code == 200, many.text[:300]
    assert many.json()["total"] == one.json()["total"]


def test_huge_arrivals_are_refused_by_the_api_the_page_and_the_cli(viewer, served_project):
    """``arrivals=1e308`` answered 200 with 4e306 customers (36 periods: inf and NaN, empty
    CSV cells, numpy's overflow warning in the log): one bound, 10^12 new customers per
    period (``segflow.migration._forecast.parse_arrivals``), for every entry point."""
    from typer.testing import CliRunner

    from segflow.cli import app

    detail = "arrivals must be at most 1,000,000,000,000 new customers per period (beyond any customer base), got"
    for params in ({"arrivals": "1e308", "periods": 6}, {"arrivals": "1e308", "periods": 36, "format": "csv"},
                   {"arrivals": "1000000000001"}):
        r = viewer.get("/api/v1/forecasts/rfm", params=params)
        assert r.status_code == 422 and r.json()["detail"] == f"{detail} {params['arrivals']!r}", r.text[:200]
    page = viewer.get("/forecasts/rfm", params={"arrivals": "1e308"}, headers={"accept": "text/html"})
    assert page.status_code == 422 and "arrivals must be at most" in page.text
    ok = viewer.get("/api/v1/forecasts/rfm", params={"arrivals": "1e12", "periods": 36, "format": "csv"})
    assert ok.status_code == 200 and ",," not in ok.text and "inf" not in ok.text.lower()
    result = CliRunner().invoke(app, ["migrate", "forecast", "-p", str(served_project), "--scheme", "rfm",
                                      "--arrivals", "1e308"])
    assert result.exit_code != 0 and f"{detail} '1e308'" in " ".join(result.output.split())


def test_audience_page_keeps_the_form_and_the_caret_of_a_rule_error(analyst):
    """A rule error (three lines: message, rule, caret under the bad name) was an error page
    without the form, the lines run together in a paragraph so the caret pointed nowhere."""
    import html
    import re

    rule = "monetary_12m >= 500 and recency_dayz < 90"
    detail = analyst.get("/api/v1/audiences", params={"rule": rule}).json()["detail"]
    assert detail.count("\n") >= 2 and "^" in detail.splitlines()[-1]
    page = analyst.get("/audiences", params={"rule": rule}, headers={"accept": "text/html"})
    shown = re.findall(r'<pre class="error" id="error">([^<]*)</pre>', page.text)
    assert page.status_code == 422 and [html.unescape(t) for t in shown] == [detail]
    assert f'id="rule" size="36" placeholder="monetary_12m >= 500 and recency_days <= 90" ' \
           f'value="{html.escape(rule)}"' in page.text
    assert '<button type="submit" id="build">' in page.text
    # a rule with markup in it is escaped in the field and in the message
    page = analyst.get("/audiences", params={"rule": "<b>x</b> > 1"}, headers={"accept": "text/html"})
    assert page.status_code == 422 and "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text
