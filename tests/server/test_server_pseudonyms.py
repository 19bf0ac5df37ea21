"""Customer ids that are e-mail addresses or phone numbers, in the server's answers.

The fixture's store with its ids rewritten in every table (``C003`` -> ``c003@shop.example``,
``C006`` -> ``+44 7700 900006``, ``C005`` kept: a store mixing both): every answer without
``pii=include`` showed the addresses as ids, even where the ``email`` column was masked."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import shutil

import duckdb
import pytest

PHONE_ID = "+44 7700 900006"
SHOP = "@shop.example"


def _new_id(old: str) -> str:
    return PHONE_ID if old == "C006" else old if old == "C005" else old.lower() + SHOP


def _key_of(directory, customer_id: str) -> str:
    """The pseudonymous key, computed here with the standard library's HMAC from the key file."""
    secret = bytes.fromhex((directory / "segflow.duckdb.idkey").read_text().strip())
    return "pid-" + hmac.new(secret, customer_id.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.fixture(scope="module")
def keyed(served_project, tmp_path_factory):
    directory = tmp_path_factory.mktemp("keyed") / "proj"
    directory.mkdir()
    for name in ("segflow.toml", "segflow.duckdb"):
        shutil.copy(served_project / name, directory / name)
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    con.create_function("new_id", _new_id, ["VARCHAR"], "VARCHAR")
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.columns WHERE "
                                        "column_name = 'customer_id' AND table_schema = 'main' "
                                        "AND table_name IN (SELECT table_name FROM information_schema.tables "
                                        "WHERE table_type = 'BASE TABLE')").fetchall()]
    for t in tables:
        con.execute(f'UPDATE "{t}" SET customer_id = new_id(customer_id)')
    con.execute("CHECKPOINT")
    con.close()
    return directory


@pytest.fixture(scope="module")
def keyed_app(keyed):
    from segflow.server import ServerSettings, create_app

    return create_app(ServerSettings(project_dir=keyed, allowed_hosts=["testserver"], poll_seconds=0, warm=False))


def _as(app, token):
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="https://testserver", headers={"authorization": f"Bearer {token}"})


def _cell(client):
    """A cell of the rfm matrix with customers: its query."""
    cells = client.get("/api/v1/migration/rfm").json()["data"]
    cell = max(cells, key=lambda c: c["customers"])
    dates = client.get("/api/v1/migration/rfm").json()["meta"]
    return {"from_date": dates["from_date"], "to_date": dates["to_date"],
            "from_segment": cell["from_segment"], "to_segment": cell["to_segment"]}


def test_a_viewer_sees_no_id_that_is_an_e_mail(keyed_app, tokens):
    """Viewers read aggregates only: every route they reach, JSON, CSV and pages, holds no id;
    every customer-level route is a 403 that names none."""
    with _as(keyed_app, tokens["viewer"]) as viewer:
        query = _cell(viewer)
        open_urls = ["/api/v1/segments/rfm", "/api/v1/segments/rfm?format=csv", "/api/v1/migration/rfm",
                     "/api/v1/migration/rfm?format=csv", "/api/v1/migration/rfm/value", "/api/v1/profiles/rfm",
                     "/api/v1/campaigns", "/api/v1/forecasts/rfm", "/api/v1/quality", "/segments/rfm",
                     "/migration/rfm", "/", "/campaigns", "/forecasts/rfm"]
        for url in open_urls:
            r = viewer.get(url)
            assert r.status_code == 200, url
            assert SHOP not in r.text and "7700 900006" not in r.text, url
        cell = "&".join(f"{k}={v}" for k, v in query.items())
        closed = ["/api/v1/customers/c001@shop.example", "/api/v1/customers?q=c00", "/api/v1/customers?format=csv",
                  f"/api/v1/migration/rfm/customers?{cell}", f"/api/v1/migration/rfm/customers?{cell}&format=csv",
                  "/api/v1/audiences?scheme=rfm&segment=x", "/customers?q=c001", "/customers/c001@shop.example",
                  f"/migration/rfm/customers?{cell}", "/audiences"]
        for url in closed:
            r = viewer.get(url, follow_redirects=False)
            assert r.status_code == 403, url
            assert SHOP not in r.text, url


def test_analysts_get_keys_in_place_of_ids_that_are_e_mails(keyed_app, keyed, tokens):
    """Masked JSON, pages and hashed CSV downloads show the key (the one the exports write,
    checked with ``hmac``); a page links the key and its page resolves it; ``pii=include``
    shows the ids."""
    with _as(keyed_app, tokens["analyst"]) as analyst:
        every = analyst.get("/api/v1/customers", params={"limit": 10_000}).json()["data"]
        ids = [r["customer_id"] for r in every]
        assert SHOP not in str(every) and PHONE_ID not in ids and "C005" in ids
        assert _key_of(keyed, "c001@shop.example") in ids and _key_of(keyed, PHONE_ID) in ids
        clear = analyst.get("/api/v1/customers", params={"limit": 10_000, "pii": "include"}).json()["data"]
        assert {r["customer_id"] for r in clear} >= {"c001@shop.example", PHONE_ID, "C005"}
        download = analyst.get("/api/v1/customers", params={"format": "csv"}).text
        rows = list(csv.DictReader(io.StringIO(download)))
        assert SHOP not in download and "email_sha256" in rows[0]
        assert sorted(r["customer_id"] for r in rows) == sorted(ids)
        # one customer, by its key: the app and the hot path resolve it, masked answers show it
        key = _key_of(keyed, "c001@shop.example")
        one = analyst.get(f"/api/v1/customers/{key}").json()
        by_id = analyst.get("/api/v1/customers/c001@shop.example").json()
        assert one == by_id and one["meta"]["customer_id"] == key and one["data"]
        assert one["meta"]["attributes"]["customer_id"] == key and SHOP not in str(one)
        assert analyst.get(f"/api/v1/customers/{key}?pii=include").json()["meta"]["customer_id"] == "c001@shop.example"
        assert analyst.get("/api/v1/customers/pid-" + "0" * 32).status_code == 404
        found = analyst.get("/api/v1/customers", params={"q": key}).json()["data"]  # a key finds its customer
        assert [r["customer_id"] for r in found] == [key]
        page = analyst.get("/customers", params={"q": "c001"}).text
        assert f'href="/customers/{key}"' in page and SHOP not in page
        detail = analyst.get(f"/customers/{key}").text
        assert f"Customer {key}" in detail and "Segment history" in detail and SHOP not in detail


def test_migration_cells_and_audiences_show_keys_unless_asked(keyed_app, keyed, tokens):
    with _as(keyed_app, tokens["analyst"]) as analyst:
        query = _cell(analyst)
        cell = analyst.get("/api/v1/migration/rfm/customers", params={**query, "limit": 10_000}).json()["data"]
        clear = analyst.get("/api/v1/migration/rfm/customers",
                            params={**query, "limit": 10_000, "pii": "include"}).json()["data"]
        assert len(cell) == len(clear) > 0 and SHOP not in str(cell)
        assert [r["customer_id"] for r in cell] == [
            r["customer_id"] if r["customer_id"] == "C005" else _key_of(keyed, r["customer_id"]) for r in clear]
        csv_text = analyst.get("/api/v1/migration/rfm/customers", params={**query, "format": "csv"}).text
        assert SHOP not in csv_text and re.search(r"pid-[0-9a-f]{32}", csv_text)
        page = analyst.get("/migration/rfm/customers", params=query).text
        assert SHOP not in page and 'href="/customers/pid-' in page
        segment = query["to_segment"]
        audience = analyst.get("/api/v1/audiences", params={"scheme": "rfm", "segment": segment, "limit": 1000}).json()
        included = analyst.get("/api/v1/audiences", params={"scheme": "rfm", "segment": segment, "limit": 1000,
                                                            "pii": "include"}).json()
        assert SHOP not in str(audience["data"]) and audience["meta"] == included["meta"]
        # the hold-out is drawn on the id: the same customers are held out either way
        assert [(_key_of(keyed, r["customer_id"]) if r["customer_id"] != "C005" else "C005", r["holdout"])
                for r in included["data"]] == [(r["customer_id"], r["holdout"]) for r in audience["data"]]
        for fmt in ("csv", "parquet"):
            body = analyst.get("/api/v1/audiences", params={"scheme": "rfm", "segment": segment, "format": fmt})
            assert SHOP.encode() not in body.content, fmt
        page = analyst.get("/audiences", params={"scheme": "rfm", "segment": segment}).text
        assert SHOP not in page


def test_the_audit_log_records_a_customer_asked_by_address_as_its_key(keyed_app, keyed, tokens):
    """A customer asked for by an id that is an e-mail address or a phone number (the
    hot path, the app's route, the page, with and without pii=include) is recorded in the
    audit log as its key, in the path and the details, as a searched address is recorded as
    q_hmac; a key and a plain id as asked. Before, the address was in the log twice."""
    from urllib.parse import quote

    with _as(keyed_app, tokens["analyst"]) as analyst:
        assert analyst.get("/api/v1/customers/C005").status_code == 200  # (makes the key file)
        email_key, phone_key = _key_of(keyed, "c001@shop.example"), _key_of(keyed, PHONE_ID)
        asked = {  # the path asked -> the path recorded
            "/api/v1/customers/c001@shop.example": f"/api/v1/customers/{email_key}",
            "/api/v1/customers/c001%40shop.example?pii=include": f"/api/v1/customers/{email_key}?pii=include",
            "/customers/c001@shop.example": f"/customers/{email_key}",
            f"/api/v1/customers/{quote(PHONE_ID)}": f"/api/v1/customers/{phone_key}",
            f"/api/v1/customers/{email_key}": f"/api/v1/customers/{email_key}",
            "/api/v1/customers/C005": "/api/v1/customers/C005",
        }
        for url in asked:
            assert analyst.get(url).status_code == 200, url
    with _as(keyed_app, tokens["admin"]) as admin:
        events = admin.get("/api/v1/audit", params={"action": "read_customer", "limit": 10_000}).json()["data"]
    text = str(events)
    assert "shop.example" not in text and "7700" not in text and "%40" not in text
    recorded = {e["resource"]: e["detail"] for e in events}
    for url, resource in asked.items():
        assert resource in recorded, url
        shown = resource.split("/")[-1].split("?")[0]
        assert f'"customer_id": "{shown}"' in recorded[resource], url
