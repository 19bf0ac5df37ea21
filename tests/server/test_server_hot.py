"""The fast paths of the hot routes: lookups from the copy's memory-mapped lookup files, and
HotPaths (score and lookup answered without FastAPI's routing) give the app's own answers."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import duckdb
import orjson
import pytest
from fastapi.testclient import TestClient

from segflow.server import _lookup, _views


@pytest.fixture(scope="module")
def plain_app(served_project):
    """The same project served with the hot paths off: every request through FastAPI."""
    from segflow.server import ServerSettings, create_app

    return create_app(ServerSettings(project_dir=served_project, allowed_hosts=["testserver"], poll_seconds=0,
                                     hot_paths=False))


@pytest.fixture(scope="module")
def plain(plain_app, tokens):
    with TestClient(plain_app, base_url="https://testserver",
                    headers={"authorization": f"Bearer {tokens['analyst']}"}) as c:
        yield c


@pytest.fixture(scope="module")
def customer_ids(served_project) -> list[str]:
    con = duckdb.connect(str(served_project / "segflow.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT customer_id FROM customers UNION SELECT customer_id FROM segment_spells ORDER BY 1").fetchall()]
    finally:
        con.close()


def _spool(served_project) -> list[dict]:
    from segflow.server import _audit

    _audit.flush()  # the hot paths' deferred events (written within 50 ms by the server)
    path = served_project / ".segflow.duckdb.serve" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_lookup_files_give_the_rows_duckdb_gives_for_every_customer(app, analyst, customer_ids):
    analyst.get("/api/v1/health")  # the app is running: its copy is open
    replica = app.state.replica
    with replica.lease() as (gen, project):
        assert gen.lookup is not None, "the copy has lookup files"
        assert gen.lookup.meta["customers"] == len(customer_ids)
        for cid in [*customer_ids, "C001x", "", "zzz", "C00"]:
            try:
                fast = _views.customer_rows_indexed(gen, cid)
            except Exception as exc:  # noqa: BLE001 - compared with the DuckDB path's
                fast = type(exc).__name__
            try:
                slow = _views.customer_rows(project, cid, None)  # no copy: DuckDB queries
            except Exception as exc:  # noqa: BLE001
                slow = type(exc).__name__
            assert fast == slow, cid
        assert _views.customer_rows_indexed(gen, customer_ids[3])["history"][1], "a customer with history"


def _count_hot(monkeypatch) -> list[str]:
    """Record each answer HotPaths gives itself."""
    from segflow.server import _hot

    seen: list[str] = []
    for name in ("customer_answer", "score_answer"):
        real = getattr(_hot, name)

        def counted(*args, _real=real, _name=name):
            seen.append(_name)
            return _real(*args)

        monkeypatch.setattr(_hot, name, counted)
    return seen


def test_hot_paths_answer_exactly_what_the_app_answers(analyst, plain, viewer, anon, tokens, customer_ids,
                                                      monkeypatch):
    hot = _count_hot(monkeypatch)
    urls = [f"/api/v1/customers/{c}" for c in customer_ids[:25]]
    urls += [f"/api/v1/customers/{customer_ids[0]}?pii=full", f"/api/v1/customers/{customer_ids[0]}?pii=default",
             f"/api/v1/customers/{customer_ids[0]}?pii=include",
             f"/api/v1/customers/{customer_ids[0]}?pii=bogus", "/api/v1/customers/nobody",
             "/api/v1/customers/C001%20x", f"/api/v1/customers/{customer_ids[1]}?pii=full&x=1"]
    for url in urls:
        a, b = analyst.get(url), plain.get(url)
        assert (a.status_code, a.headers["content-type"], a.content) == (b.status_code, b.headers["content-type"],
                                                                       b.content), url
        assert a.headers.get("content-security-policy") and a.headers.get("cache-control") == "no-store"
        assert _headers(a) == _headers(b), url
    assert hot.count("customer_answer") == 28, "the 25 customers and the three pii forms were answered by HotPaths"
    assert analyst.get(urls[0]).json()["meta"]["customer_id"] == customer_ids[0]
    # refusals come from the app, whichever path
    assert anon.get(urls[0]).status_code == 401
    assert viewer.get(urls[0]).status_code == 403
    assert analyst.get(urls[0], headers={"authorization": "Basic abc"}).status_code == 401
    assert analyst.get(urls[0], headers={"authorization": f"Bearer {tokens['analyst']}x"}).status_code == 401
    assert analyst.get(urls[0], headers={"host": "evil.test"}).status_code == 400


def _headers(response) -> dict[str, str]:
    """The answer's headers, the CSP nonce (new on every request) blanked."""
    out = dict(response.headers)
    out["content-security-policy"] = re.sub(r"'nonce-[^']+'", "'nonce-'", out["content-security-policy"])
    return out


def test_hot_paths_check_the_host_and_answer_errors_as_the_app(analyst, customer_ids, monkeypatch):
    """A Host the app refuses is refused (400) before the hot path reads anything, and an
    unexpected error in the hot path answers 500 as Starlette's error middleware does."""
    from segflow.server import _hot

    hot = _count_hot(monkeypatch)
    url = f"/api/v1/customers/{customer_ids[0]}"
    for host in ("evil.test", "testserver.evil.test", "127.0.0.2", ""):
        answer = analyst.get(url, headers={"host": host})
        assert (answer.status_code, answer.text) == (400, "Invalid host header"), host
        assert analyst.post("/api/v1/score", headers={"host": host}, json={}).status_code == 400
    assert hot == []

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(_hot, "customer_answer", broken)
    with pytest.raises(RuntimeError, match="boom"):  # the test client raises what the app raised
        analyst.get(url)
    body = {"customer_id": "x", "transactions": [{"ts": "2024-05-01T10:00:00", "amount": 20.0}]}
    assert analyst.post("/api/v1/score", json=body).status_code == 200  # the copy's scorer is built
    monkeypatch.setattr(_hot, "score_answer", broken)
    with pytest.raises(RuntimeError, match="boom"):
        analyst.post("/api/v1/score", json=body)
    from fastapi.testclient import TestClient

    safe = TestClient(analyst.app, base_url="https://testserver", raise_server_exceptions=False,
                      headers=dict(analyst.headers))
    answer = safe.get(url)
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal server error; the server log has the details"}
    assert answer.headers["cache-control"] == "no-store"
    assert safe.post("/api/v1/score", json=body).status_code == 500


def test_hot_score_answers_exactly_what_the_app_answers(analyst, plain, viewer, served_project, monkeypatch):
    con = duckdb.connect(str(served_project / "segflow.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT customer_id, ts, amount, category, channel FROM transactions "
                           "WHERE ts < DATE '2024-07-01' AND customer_id IN ('C001', 'C007', 'C030') ORDER BY ts").fetchall()
    finally:
        con.close()
    bodies = []
    for cid in ("C001", "C007", "C030"):
        lines = [{"ts": ts.isoformat(), "amount": amount, "category": cat, "channel": ch}
                 for c, ts, amount, cat, ch in rows if c == cid]
        if lines:
            bodies.append({"customer_id": cid, "transactions": lines})
    assert bodies
    # the first score of a copy builds its scorer through the app (on a fresh test worker)
    assert analyst.post("/api/v1/score", json=bodies[0]).status_code == 200
    hot = _count_hot(monkeypatch)
    bad = [{"transactions": []}, {"transactions": [{"ts": "yesterday", "amount": 1}]}, {"nope": 1},
           {"transactions": [{"ts": "2030-01-01T00:00:00", "amount": 5.0}]},
           {"transactions": [{"ts": "2024-05-01T10:00:00", "amount": 5.0}], "as_of": "1999-01-01"}]
    for body in [*bodies, *bad]:
        a, b = analyst.post("/api/v1/score", json=body), plain.post("/api/v1/score", json=body)
        assert (a.status_code, a.content) == (b.status_code, b.content), body
    assert hot.count("score_answer") == len(bodies) + 1  # the late history was scored and refused (422)
    assert analyst.post("/api/v1/score", content=b"{not json").status_code == 422
    assert viewer.post("/api/v1/score", json=bodies[0]).status_code == 403


def test_hot_paths_audit_what_the_app_audits(analyst, plain, served_project, customer_ids):
    def last(action):
        events = [e for e in _spool(served_project) if e["action"] == action]
        e = events[-1]
        return {k: e[k] for k in ("token_id", "role", "action", "resource", "detail", "client")}

    url = f"/api/v1/customers/{customer_ids[2]}?pii=full"
    assert analyst.get(url).status_code == 200
    fast = last("read_customer")
    assert plain.get(url).status_code == 200
    assert last("read_customer") == fast
    assert fast["resource"] == url and json.loads(fast["detail"]) == {"customer_id": customer_ids[2], "pii": "full"}
    body = {"customer_id": "web-1", "transactions": [{"ts": "2024-05-01T10:00:00", "amount": 20.0}]}
    assert analyst.post("/api/v1/score", json=body).status_code == 200
    fast = last("score")
    assert plain.post("/api/v1/score", json=body).status_code == 200
    assert last("score") == fast and json.loads(fast["detail"]) == {"customer_id": "web-1", "transactions": 1}


def test_fast_records_equal_the_value_by_value_version():
    columns = ["s", "d", "t", "midnight", "f", "i", "b", "n"]
    rows = [("a", dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 10, 30), dt.datetime(2024, 2, 1), 1 / 3, 7, True, None),
            (None, None, None, None, math.nan, None, False, None),
            ("c", dt.date(2024, 3, 1), dt.datetime(2024, 3, 1, 0, 0, 1), dt.datetime(2024, 3, 1), 2.5e-12, -1, None, None)]
    fast = orjson.loads(orjson.dumps(_views.fast_records(columns, rows)))
    assert fast == _reference(columns, rows)
    assert fast[0]["midnight"] == "2024-02-01" and fast[0]["t"] == "2024-01-01T10:30:00" and fast[1]["f"] is None
    assert fast[2]["t"] == "2024-03-01T00:00:01" and fast[0]["f"] == 0.333333333333333  # 15 digits
    for row in rows:  # one row: value by value, same answer
        assert orjson.loads(orjson.dumps(_views.fast_records(columns, [row]))) == _reference(columns, [row])
    micro = [(dt.datetime(2024, 1, 1, 10, 30, 0, 120),), (dt.datetime(2024, 1, 2),)]
    assert orjson.loads(orjson.dumps(_views.fast_records(["t"], micro))) == _reference(["t"], micro)
    assert _views.fast_records(columns, []) == []


def _reference(columns, rows):
    """What fast_records returned before it worked by column (the value-by-value version)."""
    from segflow._result import jsonable

    midnight = set()
    for j in range(len(columns)):
        values = [r[j] for r in rows if r[j] is not None]
        if values and all(isinstance(v, dt.datetime) for v in values) and all(
                v.hour == v.minute == v.second == v.microsecond == 0 for v in values):
            midnight.add(j)
    return [{str(c): jsonable(v.date() if j in midnight and v is not None else v)
             for j, (c, v) in enumerate(zip(columns, r, strict=True))} for r in rows]


def test_lookup_build_refuses_what_it_cannot_index(tmp_path):
    con = duckdb.connect()
    con.execute("CREATE TABLE segment_spells (customer_id VARCHAR, scheme VARCHAR, segment VARCHAR, "
                "valid_from DATE, valid_to DATE)")
    con.execute("CREATE TABLE segment_snapshots (scheme VARCHAR, snapshot_date DATE)")
    con.execute("CREATE TABLE customers (customer_id VARCHAR, since INTERVAL)")
    con.execute("INSERT INTO customers VALUES ('a', INTERVAL 3 DAY)")
    with pytest.raises(_lookup.IndexNotBuilt, match="customers.since"):
        _lookup.build(con, tmp_path / "x.lookup")
    assert not (tmp_path / "x.lookup").exists()
    con.execute("DROP TABLE customers")
    con.execute("INSERT INTO segment_spells VALUES ('b', 'rfm', 'new', DATE '2024-01-01', NULL), "
                "('é', 'rfm', 'gone', DATE '2024-01-01', DATE '2024-02-01'), ('a', 'rfm', 'new', DATE '2024-02-01', NULL)")
    con.execute("INSERT INTO segment_snapshots VALUES ('rfm', DATE '2024-01-01'), ('rfm', DATE '2024-02-01')")
    meta = _lookup.build(con, tmp_path / "y.lookup")
    assert meta["customers"] == 3 and meta["parts"]["spells"]["rows"] == 3
    index = _lookup.CustomerIndex(tmp_path / "y.lookup")
    assert index.rows("spells", index.position("é"))[1] == [("rfm", "gone", dt.date(2024, 1, 1), dt.date(2024, 2, 1))]
    assert index.position("c") is None and index.position("") is None
    assert index.snapshots == {"rfm": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)]}
    empty = duckdb.connect()
    empty.execute("CREATE TABLE segment_spells (customer_id VARCHAR, scheme VARCHAR, segment VARCHAR, "
                  "valid_from DATE, valid_to DATE)")
    empty.execute("CREATE TABLE segment_snapshots (scheme VARCHAR, snapshot_date DATE)")
    _lookup.build(empty, tmp_path / "z.lookup")
    assert _lookup.CustomerIndex(tmp_path / "z.lookup").position("a") is None


def test_lookup_rows_across_small_batches_equal_duckdb(served_project, customer_ids, tmp_path):
    """Batches of 7 rows: a customer's rows often straddle two batches; both ways of reading
    rows (value by value for a few rows, column slices for more) are compared with DuckDB."""
    con = duckdb.connect(str(served_project / "segflow.duckdb"), read_only=True)
    try:
        _lookup.build(con, tmp_path / "small.lookup", batch_rows=7)
        index = _lookup.CustomerIndex(tmp_path / "small.lookup")
        parts = _lookup.part_sql(con)
        sizes = set()
        for cid in customer_ids:
            k = index.position(cid)
            for name, (table, select, order) in parts.items():
                got = index.rows(name, k)
                want = con.execute(_lookup.lookup_sql(table, select, order), [cid]).fetchall()
                if name == "spells":  # the DuckDB path sorts the expanded rows itself
                    got, want = (got[0], sorted(got[1], key=repr)), sorted(want, key=repr)
                assert got[1] == want, (cid, name)
                sizes.add(len(want) > 4)
    finally:
        con.close()
    assert sizes == {True, False}, "both ways of reading rows were used"


def test_score_models_carry_what_the_feature_computer_reads():
    """score_answer hands the validated request models to the scorer in place of Line, Event,
    Answer and Exposure: they must carry the same fields."""
    from dataclasses import fields

    from segflow.server._fast_features import Answer, Event, Exposure, Line
    from segflow.server.routes.score import EventIn, ExposureIn, SurveyAnswerIn, TransactionIn

    for model, data in ((TransactionIn, Line), (EventIn, Event), (ExposureIn, Exposure), (SurveyAnswerIn, Answer)):
        assert set(model.model_fields) == {f.name for f in fields(data)}, model.__name__


def test_float_stdev_agrees_with_the_exact_one():
    import random
    import statistics

    from segflow.server._fast_features import _stdev

    rng = random.Random(7)
    for n in (2, 3, 5, 40, 400):
        for scale in (1.0, 1e-3, 1e6):
            gaps = [float(rng.randint(1, 400)) * scale for _ in range(n)]
            assert math.isclose(_stdev(gaps), statistics.stdev(gaps), rel_tol=1e-13), (n, scale)
    assert _stdev([3.0, 3.0, 3.0]) == 0.0


def test_hot_audit_events_are_written_within_the_flush_interval(analyst, served_project, customer_ids):
    """The hot routes defer their audit lines; the server's timer writes them within 50 ms,
    and anything reading the log in the process sees them at once."""
    import time

    from segflow.server import _audit
    from segflow.server._hot import AUDIT_FLUSH_SECONDS

    path = served_project / ".segflow.duckdb.serve" / "audit.jsonl"
    _audit.flush()
    url = f"/api/v1/customers/{customer_ids[4]}?pii=default"
    assert analyst.get(url).status_code == 200
    time.sleep(AUDIT_FLUSH_SECONDS + 0.5)  # the timer runs on the test client's event loop
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1]["resource"] == url and lines[-1]["action"] == "read_customer"
    work = path.parent
    _audit.record(work, token_id="t1", role="analyst", action="score", resource="/x", deferred=True)
    assert json.loads(path.read_text().splitlines()[-1])["resource"] == url, "not yet written"
    assert _audit.read_events(work, None, limit=1)[0]["resource"] == "/x", "read_events flushes first"
    assert json.loads(path.read_text().splitlines()[-1])["resource"] == "/x"


def test_hot_audit_events_are_written_after_a_loop_ended_before_its_timer(app, tokens, analyst, served_project,
                                                                         customer_ids):
    """A request on an event loop that ends within 50 ms (a client without a lifespan runs
    each request on its own loop) must not stop later requests' events from being written:
    the next loop schedules its own flush, which writes both."""
    import time

    from segflow.server import _audit
    from segflow.server._hot import AUDIT_FLUSH_SECONDS

    path = served_project / ".segflow.duckdb.serve" / "audit.jsonl"
    _audit.flush()
    short_lived = TestClient(app, base_url="https://testserver",
                             headers={"authorization": f"Bearer {tokens['analyst']}"})
    first = f"/api/v1/customers/{customer_ids[5]}?pii=default"
    assert short_lived.get(first).status_code == 200  # its loop ends with the request
    second = f"/api/v1/customers/{customer_ids[6]}?pii=default"
    assert analyst.get(second).status_code == 200
    time.sleep(AUDIT_FLUSH_SECONDS + 0.5)
    resources = [json.loads(line)["resource"] for line in path.read_text().splitlines()[-2:]]
    assert resources == [first, second]
