"""POST /api/v1/score: the segments of a stored customer's history equal the stored ones."""

from __future__ import annotations

import duckdb
import pytest


def _history(directory, customer_id):
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    try:
        tx = con.execute(
            "SELECT ts, amount, quantity, category, channel, is_return FROM transactions "
            "WHERE customer_id = ? AND ts < DATE '2024-07-01' ORDER BY ts", [customer_id]).df()
        stored = dict(con.execute(
            "SELECT scheme, segment FROM segment_assignments WHERE customer_id = ? AND snapshot_date = '2024-07-01'",
            [customer_id]).fetchall())
    finally:
        con.close()
    rows = [{k: (str(v) if k == "ts" else (None if v != v else v)) for k, v in r.items()} for r in tx.to_dict("records")]
    return rows, stored


@pytest.mark.parametrize("customer_id", ["C001", "C007", "C030"])
def test_score_reproduces_stored_segments(analyst, served_project, customer_id):
    rows, stored = _history(served_project, customer_id)
    if not rows:
        pytest.skip(f"{customer_id} has no transactions before the snapshot")
    r = analyst.post("/api/v1/score", json={"customer_id": customer_id, "transactions": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["snapshot_date"] == "2024-07-01"
    assert body["segments"] == stored, body["notes"]
    assert body["features"]["orders_total"] >= 1


def test_score_refusals(viewer, analyst, anon):
    body = {"transactions": [{"ts": "2024-05-01T10:00:00", "amount": 20.0}]}
    assert anon.post("/api/v1/score", json=body).status_code == 401
    assert viewer.post("/api/v1/score", json=body).status_code == 403
    assert analyst.post("/api/v1/score", json={"transactions": []}).status_code == 422
    late = {"transactions": [{"ts": "2030-01-01T00:00:00", "amount": 5.0}]}
    r = analyst.post("/api/v1/score", json=late)
    assert r.status_code == 422 and "no transactions before" in r.json()["detail"]
    # a NaN quantity and a nested attribute value were accepted; both hot path and app
    for _ in range(2):
        nan = {"transactions": [{"ts": "2024-05-01T10:00:00", "amount": 20.0, "quantity": "NaN"}]}
        r = analyst.post("/api/v1/score", json=nan)
        assert r.status_code == 422 and "quantity" in r.text, r.text
        odd = {**body, "attributes": {"region": {"a": 1}, "city": ["x"], "age_band": "25-34"}}
        r = analyst.post("/api/v1/score", json=odd)
        assert r.status_code == 422 and "city, region must be text, a number or null" in r.text, r.text
        # an amount or quantity the ingest would quarantine (magnitude 1e20 or more)
        for line in ({"amount": 1e300}, {"amount": -1e20}, {"amount": 5.0, "quantity": 1e20}):
            huge = {"transactions": [{"ts": "2024-05-01T10:00:00", **line}]}
            r = analyst.post("/api/v1/score", json=huge)
            assert r.status_code == 422 and next(iter(line.keys() - {"amount"}), "amount") in r.text, r.text
    assert analyst.post("/api/v1/score", json={**body, "attributes": {"region": "North"}}).status_code == 200
    big = {"transactions": [{"ts": "2024-05-01T10:00:00", "amount": 9.9e19}]}
    assert analyst.post("/api/v1/score", json=big).status_code == 200


def test_score_refuses_a_body_beyond_the_limit_before_reading_it_all(analyst):
    """Any body was read whole into memory (a 60 MB customer id was parsed, then refused)."""
    from segflow.server.routes.score import MAX_BODY

    # a first request builds the scorer: the big bodies below then meet the hot path first
    small = analyst.post("/api/v1/score", json={"transactions": [{"ts": "2024-05-01T10:00:00", "amount": 20.0}]})
    assert small.status_code == 200
    big = b'{"customer_id": "' + b"a" * (MAX_BODY + 10) + b'", "transactions": []}'
    r = analyst.post("/api/v1/score", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than 32 MiB" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while read
        for _ in range(40):
            yield b" " * 2**20
        yield b'{"transactions": [{"ts": "2024-05-01T10:00:00", "amount": 20.0}]}'

    r = analyst.post("/api/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_422_details_drop_pydantic_value_error_prefix(analyst):
    """A validator's own message was shown as "Value error, ...": the prefix goes, as in
    segflow.toml's errors (segflow.config._errors.message); the place stays."""
    day = {"ts": "2024-05-01T10:00:00", "amount": 20.0}
    odd = {"transactions": [day], "attributes": {"region": {"a": 1}, "city": ["x"]}}
    r = analyst.post("/api/v1/score", json=odd)
    assert (r.status_code, r.json()) == (
        422, {"detail": "attributes: attribute(s) city, region must be text, a number or null"})
    zoned = {"transactions": [day, {**day, "ts": "2024-05-02T10:00:00+02:00"}]}
    r = analyst.post("/api/v1/score", json=zoned)
    assert (r.status_code, r.json()) == (
        422, {"detail": "transactions.1.ts: give local time without a time zone offset, as the "
                        "store holds it"})
    r = analyst.post("/api/v1/score", json={"transactions": [{"amount": 1.0}]})
    assert (r.status_code, r.json()) == (422, {"detail": "transactions.0.ts: Field required"})
