"""Text from the settings and the data reaches the dashboard escaped: segment names (a
scheme's rules), a region of the customers file, a customer id with URL characters. Before,
the migration customers page, the forecast table's headers and the customer search left
them as HTML."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pyarrow as pa
import pytest
from tests.pipeline._fixture import fixture_tables

pytestmark = pytest.mark.slow

IMG = '<img src=x onerror="alert(1)">'
ENDS = "</script><b>bold</b>"
REGION = '<a href="/customers/x" style="position:fixed;inset:0">pwn</a>'
ODD_ID = "C/1?x=<i>"
#: A campaign id from the data with a slash, a query, a fragment and a percent sign.
ODD_CAMPAIGN = "Q1/2024 <i>50%</i>?#x"

TOML = f"""
[project]
name = "hostile"

[periods]
granularity = "month"

[[schemes]]
name = "hostile"
kind = "rules"
default = '{ENDS}'
rules = [{{ segment = '{IMG}', when = "monetary >= 150" }}]
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    from segflow.project import Project
    from segflow.server._tokens import create_token

    directory = tmp_path_factory.mktemp("hostile") / "proj"
    project = Project.init(directory, toml_text=TOML)
    tables = fixture_tables()
    customers = tables["customers"]
    regions = pa.array([REGION] * customers.num_rows, pa.string())
    customers = customers.set_column(customers.schema.get_field_index("region"), "region", regions)
    ids = [ODD_ID if c == "C001" else c for c in customers["customer_id"].to_pylist()]
    customers = customers.set_column(0, "customer_id", pa.array(ids, pa.string()))
    tx = tables["transactions"]
    tx_ids = [ODD_ID if c == "C001" else c for c in tx["customer_id"].to_pylist()]
    tx = tx.set_column(tx.schema.get_field_index("customer_id"), "customer_id", pa.array(tx_ids))
    others = [c for c in ids if c != ODD_ID]
    exposures = pa.table({
        "campaign_id": pa.array([ODD_CAMPAIGN] * len(others), pa.string()),
        "customer_id": pa.array(others, pa.string()),
        "ts": pa.array([dt.datetime(2024, 3, 1, 9)] * len(others), pa.timestamp("us")),
        "arm": pa.array(["treatment" if k % 2 else "control" for k in range(len(others))], pa.string()),
        "exposure_type": pa.array(["send"] * len(others), pa.string()),
    })
    tables = {**tables, "customers": customers, "transactions": tx, "campaign_exposures": exposures}
    for name, table in tables.items():
        project.store.append(name, table)
    project.run()
    dates = sorted({r[0] for r in project.store.raw.execute(
        "SELECT DISTINCT snapshot_date FROM segment_assignments").fetchall()})
    with project.store.transaction() as con:
        token = create_token(con, "analyst", name="test analyst")[0]
    project.store.raw.execute("CHECKPOINT")
    project.close()
    return directory, token, dates


@pytest.fixture(scope="module")
def analyst(hostile):
    from fastapi.testclient import TestClient

    from segflow.server import ServerSettings, create_app

    directory, token, _ = hostile
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"],
                                    poll_seconds=0))
    with TestClient(app, base_url="https://testserver",
                    headers={"authorization": f"Bearer {token}"}) as c:
        yield c


def _clean(body: str) -> None:
    for raw in (IMG, "<b>bold</b>", REGION, "<i>"):
        assert raw not in body
    assert "</script><b>" not in body


def test_segment_names_regions_and_ids_are_escaped_on_every_page(hostile, analyst):
    _, _, dates = hostile
    frm, to = dates[-2], dates[-1]
    assert isinstance(frm, dt.date)
    pages = {
        "migration": f"/migration/hostile?{urlencode({'from_date': frm, 'to_date': to})}",
        "cell": "/migration/hostile/customers?" + urlencode(
            {"from_date": frm, "to_date": to, "from_segment": IMG, "to_segment": IMG}),
        "search": "/customers?q=C",
        "forecast": "/forecasts/hostile",
        "segments": "/segments/hostile",
    }
    bodies = {}
    for name, url in pages.items():
        r = analyst.get(url)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        bodies[name] = r.text
        _clean(r.text)
    # the names are there, as text
    assert "&lt;img src=x" in bodies["cell"] and "&lt;img src=x" in bodies["migration"]
    assert "&lt;a href=&#34;/customers/x&#34;" in bodies["search"] or \
        "&lt;a href=&quot;/customers/x&quot;" in bodies["search"]
    # the odd id: percent-encoded in the link, escaped in the text, and its page answers
    assert 'href="/customers/C%2F1%3Fx%3D%3Ci%3E"' in bodies["search"]
    page = analyst.get("/customers/C%2F1%3Fx%3D%3Ci%3E")
    assert page.status_code == 200 and "C/1?x=&lt;i&gt;" in page.text
    _clean(page.text)
    api = analyst.get("/api/v1/customers/C%2F1%3Fx%3D%3Ci%3E")
    assert api.status_code == 200 and ODD_ID in api.text


def test_a_campaign_id_with_url_characters_is_linked_encoded_and_its_pages_answer(analyst):
    """A campaign id holding "/" matched no route (``{campaign_id}`` stops at a slash: 404
    for a campaign the list shows) and the list linked it unencoded ("?" and "#" cut it)."""
    from urllib.parse import quote

    listing = analyst.get("/campaigns")
    assert listing.status_code == 200
    _clean(listing.text)
    encoded = quote(ODD_CAMPAIGN, safe="")
    assert f'href="/campaigns/{encoded}"' in listing.text
    page = analyst.get(f"/campaigns/{encoded}", params={"scheme": "hostile"})
    assert page.status_code == 200, page.text[:300]
    _clean(page.text)
    assert f"/api/v1/campaigns/{encoded}?scheme=hostile" in page.text
    api = analyst.get(f"/api/v1/campaigns/{encoded}", params={"scheme": "hostile"})
    assert api.status_code == 200, api.text[:300]
    assert api.json()["meta"]["campaign_id"] == ODD_CAMPAIGN
    csv = analyst.get(f"/api/v1/campaigns/{encoded}", params={"scheme": "hostile", "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
