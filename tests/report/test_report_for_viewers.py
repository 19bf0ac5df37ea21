"""``segflow report --for viewer``: the report written for readers of aggregates withholds
what the dashboard withholds from its viewers (small segments' value figures and their
complement), states the rule, and keeps the counts; the analyst's report shows them all.

On the demo fixture (no segment below the default 5), with ``min_cell_customers`` raised to
20 in memory: lifecycle's ``seasonal`` (8 customers), RFM's ``New`` (16) and the value tiers'
``top 1%`` (11) are small."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

MIN = 20


@pytest.fixture(scope="module")
def reports(demo_project, demo_report, tmp_path_factory):
    """(analyst's HTML, viewer's HTML, the store's segment rows at each scheme's last
    snapshot: {scheme: {segment: (customers, revenue_12m)}}, CLV rows {scheme: {segment: clv}})."""
    from segflow.project import Project

    path = tmp_path_factory.mktemp("viewers") / "report.html"
    with Project.open(demo_project, read_only=True) as project:
        project.settings.server.min_cell_customers = MIN
        project.report(path, role="viewer")
        raw = project.store.raw
        rows = raw.execute("SELECT scheme, segment, customers, revenue_12m, clv FROM summary_segments s WHERE "
                           "snapshot_date = (SELECT max(snapshot_date) FROM summary_segments WHERE scheme = s.scheme)"
                           ).fetchall()
    stored: dict[str, dict[str, tuple[int, float]]] = {}
    values: dict[str, dict[str, float]] = {}
    for scheme, segment, customers, revenue, clv in rows:
        stored.setdefault(scheme, {})[segment] = (customers, revenue)
        values.setdefault(scheme, {})[segment] = clv
    return demo_report.read_text(encoding="utf-8"), path.read_text(encoding="utf-8"), stored, values


def _money(value: float) -> str:
    """A figure as the report writes it in its tables (:func:`segflow.report._format.money`,
    worked out here: whole units, thousands separated)."""
    return f"{value:,.0f} GBP"


def test_small_segments_and_their_complement_are_blank_for_viewers(reports):
    """Each small segment's 12-month revenue and CLV, and those of the smallest other segment
    of buyers (the complement: the total less the shown rows would be the small one's), are in
    the analyst's report and nowhere in the viewer's; the segments' customers are in both."""
    analyst, viewer, stored, values = reports
    checked = 0
    for scheme in ("lifecycle", "rfm", "value_tiers"):
        rows = stored[scheme]
        small = [s for s, (n, _) in rows.items() if 0 < n < MIN]
        assert len(small) == 1, rows
        # the smallest segment of the others whose revenue is not known by definition (0: no purchase)
        buyers = [s for s, (n, _) in rows.items() if n >= MIN and s not in ("prospects", "inactive", "No purchase yet")]
        complement = min(buyers, key=lambda s: (rows[s][0], s))
        for segment in (small[0], complement):
            for figure in (rows[segment][1], values[scheme][segment]):
                assert _money(figure) in analyst, (scheme, segment, figure)
                assert _money(figure) not in viewer, (scheme, segment, figure)
                checked += 1
        assert f"{small[0]}: fewer than {MIN} customers" in viewer.replace("&#x27;", "'")
    assert checked == 12
    big = max(stored["lifecycle"], key=lambda s: stored["lifecycle"][s][0])
    assert _money(stored["lifecycle"][big][1]) in viewer  # large segments keep their figures


def test_the_viewers_report_states_the_rule(reports):
    analyst, viewer, _, _ = reports
    rule = re.search(r'<p class="rule" id="small-cells">([^<]*)</p>', viewer)
    assert rule and f"fewer than {MIN} customers are left blank" in rule.group(1)
    assert 'id="small-cells"' not in analyst and "Blank for viewers" not in analyst
    assert "(for viewers)</h1>" in viewer and "(for viewers)" not in analyst
    assert "(withheld)" in viewer and "(withheld)" not in analyst  # the campaigns' forest plots


def _charts(page: str, kind: str) -> dict[str, list[dict]]:
    """The traces of the campaign charts of ``kind`` in a report, by campaign, arrays decoded
    (Plotly writes them as base64 ``bdata``)."""
    import base64
    import json

    import numpy as np

    def plain(value):
        if isinstance(value, dict) and "bdata" in value:
            shape = [int(n) for n in str(value.get("shape", "-1")).split(",")]
            return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
        return value

    out = {}
    for campaign, body in re.findall(rf'id="chart-campaign-([^"]+)-{kind}-[0-9a-f]+-data">(.*?)</script>', page, re.S):
        out[campaign] = [{k: plain(v) for k, v in trace.items()} for trace in json.loads(body)["data"]]
    return out


def test_campaign_transition_shares_leave_the_withheld_segments_blank(reports):
    """The campaign's transition shares by arm showed, for viewers too, the rows of segments
    whose lift the forest plot withholds: a lifecycle's two-time moving to loyalists is their
    third purchase, so the difference of the arms' shares was the withheld purchase lift
    itself (-21.7 points on the demo). Now those rows are blank and named "(withheld)"."""
    import numpy as np

    analyst, viewer, _, _ = reports
    lifts, heatmaps = _charts(viewer, "lift_purchased"), _charts(viewer, "transitions")
    full_lifts, full_heatmaps = _charts(analyst, "lift_purchased"), _charts(analyst, "transitions")
    assert lifts and set(heatmaps) == set(lifts)
    checked = 0
    for campaign, traces in lifts.items():
        withheld = {y.removesuffix(" (withheld)") for y in traces[0]["y"] if y.endswith(" (withheld)")}
        for trace in heatmaps[campaign]:
            for label, row in zip(trace["y"], np.asarray(trace["z"], dtype=float), strict=True):
                segment = label.removesuffix(" (withheld)")
                assert (segment in withheld) == label.endswith(" (withheld)"), (campaign, label)
                assert np.isnan(row).all() == (segment in withheld), (campaign, label, row)
                checked += segment in withheld
        # in the analyst's report, CMP_WINBACK's withheld lift of two-time customers is the
        # difference of the arms' shares of them moving to loyalists (their third purchase)
        if campaign == "CMP_WINBACK":
            assert "two-time" in withheld
            lift = dict(zip(full_lifts[campaign][0]["y"], full_lifts[campaign][0]["x"], strict=True))["two-time"]
            difference = full_heatmaps[campaign][-1]
            row = list(difference["y"]).index("two-time")
            assert difference["z"][row][list(difference["x"]).index("loyalists")] == pytest.approx(lift, abs=1e-9)
    assert checked >= 6 and "CMP_WINBACK" in lifts


def test_the_viewers_data_quality_section_quotes_no_row(reports):
    """The data-quality section quoted rows to viewers: a quarantine rule's example reason
    (``customer id 'C288232' is not in the customers table``) and an audit check's examples
    (``transaction_id=O000016074, amount=518.76``, ``customer_id=C000005``), customer-level data
    the dashboard keeps from its viewers (/api/v1/quality drops the example). The counts stay."""
    analyst, viewer, _, _ = reports

    def section(page: str) -> str:
        return page[page.index('id="quality"'):]

    full, shown = section(analyst), section(viewer)
    for quoted in ("Example reason", "customer_id=C0", "amount=", "customer id &#x27;C"):
        assert quoted in full and quoted not in shown, quoted
    rows = re.findall(r'<td class="num">([\d,]+)</td>', full[:full.index("Audit checks")])
    assert rows and rows == re.findall(r'<td class="num">([\d,]+)</td>', shown[:shown.index("Audit checks")])
