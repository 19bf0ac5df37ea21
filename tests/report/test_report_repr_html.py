"""Notebook views of the results a Project returns: the CLV diagnostics and a campaign read-out
show as HTML tables with their numbers (Jupyter calls ``_repr_html_``)."""

from __future__ import annotations

import html
import re

import pytest


def _cells(fragment: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", fragment)
    return [[html.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)] for r in rows]


@pytest.fixture(scope="module")
def project(demo_project):
    from segflow.project import Project

    with Project.open(demo_project, read_only=True) as p:
        yield p


def test_clv_diagnostics_show_caveats_and_the_decile_table(project):
    diag = project.clv_diagnostics()
    page = diag._repr_html_()
    assert f"CLV diagnostics at {diag.snapshot}" in page
    for caveat in diag.caveats():
        assert html.escape(caveat) in page
    rows = _cells(page)
    assert rows[0][0] == "Decile (1 = highest)" and len(rows) == 1 + len(diag.deciles)
    d = diag.deciles.iloc[0]
    assert rows[1][:4] == ["1", f"{int(d.customers):,}", f"{d.predicted_purchases:,.2f}", f"{d.actual_purchases:,.2f}"]
    assert rows[1][4] == f"{d.predicted_any_purchase * 100:.1f} %"


def test_campaign_report_shows_the_lift_table(project):
    reports = project.campaigns()
    assert reports
    report = reports[0]
    page = report._repr_html_()
    assert f"Campaign {report.campaign_id}" in page
    rows = _cells(page)
    header = rows[0]
    assert header[:3] == ["Breakdown", "Segment", "Arm"] and "Lift vs control" in header
    t = report.effect.table
    assert len(rows) == 1 + len(t)
    customers = header.index("Customers")
    assert [r[customers] for r in rows[1:]] == [f"{int(n):,}" for n in t["n"]]
