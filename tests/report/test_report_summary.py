"""The executive summary's numbers against an independent pandas computation on the store."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ctx(demo_project):
    from segflow.project import Project
    from segflow.report._context import ReportContext

    project = Project.open(demo_project, read_only=True)
    yield ReportContext(project)
    project.close()


def _frames(ctx, scheme):
    raw = ctx.project.store.raw
    a = raw.execute(
        "SELECT customer_id, snapshot_date, segment, segment_rank FROM segment_assignments WHERE scheme = ?",
        [scheme],
    ).df()
    t = raw.execute("SELECT customer_id, ts, amount FROM transactions WHERE customer_id IS NOT NULL").df()
    return a, t


def test_movement_cells_match_pandas(ctx):
    scheme = ctx.headline_scheme
    before, now = ctx.dates(scheme)[-2:]
    a, t = _frames(ctx, scheme)
    a["snapshot_date"] = pd.to_datetime(a["snapshot_date"]).dt.date
    f = a[a.snapshot_date == before].set_index("customer_id")["segment"].rename("f")
    g = a[a.snapshot_date == now].set_index("customer_id")["segment"].rename("t")
    both = pd.concat([f, g], axis=1).fillna({"f": "(new)", "t": "(gone)"})
    lo = pd.Timestamp(now - dt.timedelta(days=365))
    rev = t[(t.ts >= lo) & (t.ts < pd.Timestamp(now))].groupby("customer_id")["amount"].sum()
    both["rev"] = rev.reindex(both.index).fillna(0.0)
    expected = both.groupby(["f", "t"]).agg(customers=("rev", "size"), revenue=("rev", "sum"))
    cells = ctx.movements(scheme).set_index(["from_segment", "to_segment"])
    assert len(cells) == len(expected)
    for key, row in expected.iterrows():
        assert cells.loc[key, "customers"] == row.customers
        assert cells.loc[key, "revenue_12m"] == pytest.approx(row.revenue, rel=1e-9, abs=1e-6)


def test_headlines_state_the_largest_moves(ctx):
    from segflow.report._summary import executive_summary

    summary = executive_summary(ctx)
    assert 3 <= len(summary.headlines) <= 5
    cells = ctx.movements(summary.scheme)
    down = cells[cells.direction == "down"].sort_values(["revenue_12m", "customers"], ascending=False).iloc[0]
    base = ctx.sizes(summary.scheme, summary.now)["customers"].sum()
    assert summary.headlines[0].startswith(
        f"{down.customers:,} customers ({down.customers / base * 100:.1f} %) moved down from "
        f"{down.from_segment} to {down.to_segment}"
    )
    # every segment of the scheme has exactly one action, and the audiences add up to the base
    assert summary.actions["customers"].sum() == base
    assert summary.health.startswith(f"{ctx.project.store.raw.execute('SELECT sum(rows_read) FROM (SELECT DISTINCT ON (source, source_file) rows_read FROM loads ORDER BY source, source_file, started_at DESC)').fetchone()[0]:,} rows read")


def test_segment_change_table_matches_sizes(ctx):
    from segflow.report._sections import segment_change_table

    for scheme in ctx.schemes:
        dates = ctx.dates(scheme)
        if len(dates) < 2:
            continue
        table = segment_change_table(ctx, scheme).set_index("segment")
        a, _ = _frames(ctx, scheme)
        a["snapshot_date"] = pd.to_datetime(a["snapshot_date"]).dt.date
        now = a[a.snapshot_date == dates[-1]]["segment"].value_counts()
        before = a[a.snapshot_date == dates[-2]]["segment"].value_counts()
        for seg in table.index:
            assert table.loc[seg, "customers"] == now.get(seg, 0)
            assert table.loc[seg, "change_customers"] == now.get(seg, 0) - before.get(seg, 0)
