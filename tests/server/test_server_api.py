"""Every dashboard page and its JSON twin, on a fixed project store."""

from __future__ import annotations

import duckdb


def _expected_sizes(directory, scheme):
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    try:
        return dict(
            con.execute(
                "SELECT segment, count(*) FROM segment_assignments WHERE scheme = ? AND snapshot_date = "
                "(SELECT max(snapshot_date) FROM segment_assignments WHERE scheme = ?) GROUP BY segment",
                [scheme, scheme],
            ).fetchall()
        )
    finally:
        con.close()


def test_health(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["schema_version"] >= 1
    assert body["project"] == "pipeline fixture"


def test_live_needs_no_login_and_says_nothing_about_the_project(anon):
    r = anon.get("/api/v1/live")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "warm": r.json()["warm"]}
    assert isinstance(r.json()["warm"], bool)
    assert anon.get("/api/v1/health").status_code == 401  # the details need a viewer


def test_schemes(client):
    body = client.get("/api/v1/schemes").json()
    assert body["count"] == 4 and body["total"] == 4
    rfm = next(s for s in body["data"] if s["scheme"] == "rfm")
    assert rfm["snapshots"] == 6 and rfm["last_snapshot"] == "2024-07-01"


def test_segments_json_matches_the_store(client, served_project):
    body = client.get("/api/v1/segments/lifecycle").json()
    got = {row["segment"]: row["customers"] for row in body["data"]}
    assert got == _expected_sizes(served_project, "lifecycle")
    assert abs(sum(row["share"] for row in body["data"]) - 1.0) < 1e-9


def test_segments_page_renders_same_numbers(client, served_project):
    r = client.get("/segments/lifecycle")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for segment, n in _expected_sizes(served_project, "lifecycle").items():
        assert segment in r.text and f"{n:,}" in r.text


def test_migration_json_and_page(client):
    body = client.get("/api/v1/migration/rfm").json()
    assert body["meta"]["from_date"] == "2024-06-01" and body["meta"]["to_date"] == "2024-07-01"
    assert body["count"] > 0
    page = client.get("/migration/rfm")
    assert page.status_code == 200 and "sankey" in page.text


def test_unknown_scheme_is_404_with_a_message(client):
    r = client.get("/api/v1/segments/nope")
    assert r.status_code == 404
    assert "nope" in r.json()["detail"]


def test_customer_history(client):
    body = client.get("/api/v1/customers/C001").json()
    assert {row["scheme"] for row in body["data"]} <= {"rfm", "lifecycle", "tiers", "rules"}
    assert client.get("/api/v1/customers/does-not-exist").status_code == 404


def test_plotly_js_is_served_locally(anon):
    r = anon.get("/static/plotly.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000


def test_offsets_beyond_the_limit_are_a_422_naming_the_parameter(client, admin):
    """offset=2**63 reached DuckDB's OFFSET (a BIGINT) and answered 500 on /api/v1/customers."""
    for c, path in [(client, "/api/v1/customers"), (client, "/api/v1/segments/rfm"),
                    (client, "/api/v1/campaigns"), (admin, "/api/v1/audit"), (admin, "/api/v1/tokens")]:
        for offset in (2**63, 10**30):
            r = c.get(path, params={"offset": offset})
            assert r.status_code == 422, (path, offset, r.text[:200])
            assert r.json()["detail"].startswith("offset: Input should be less than or equal to")
    assert client.get("/api/v1/customers", params={"offset": 10**12}).json()["data"] == []


def test_unknown_schemes_and_dates_do_not_fill_the_cache(app, viewer):
    """Each unknown scheme name (and each profile date) asked for was cached for the life of
    the copy, with a lock per key that was never dropped: any viewer could grow the server's
    memory, and at the cache's bound empty it of the costly aggregates."""
    assert viewer.get("/api/v1/schemes").status_code == 200
    gen = app.state.replica.current
    assert gen.warmed.wait(60)
    viewer.get("/api/v1/profiles/rfm")
    before = set(gen._cache)
    for k in range(50):
        r = viewer.get(f"/api/v1/segments/nosuch-{k}")
        assert r.status_code == 404 and "no assignments stored for scheme" in r.json()["detail"]
        r = viewer.get("/api/v1/profiles/rfm", params={"snapshot": f"1900-01-{k % 28 + 1:02d}"})
        assert r.status_code == 404 and "has no snapshot 1900-01-" in r.json()["detail"]
    assert set(gen._cache) == before
    assert not gen._key_locks


def test_customers_pages_follow_each_other(client):
    """The search pages in the engine (limit, offset); the response then showed rows
    ``offset ..`` of that page again: every page after the first was empty, and meta.limit
    said how many rows came back instead of the limit asked for."""
    whole = client.get("/api/v1/customers", params={"limit": 6, "offset": 0}).json()
    first = client.get("/api/v1/customers", params={"limit": 3, "offset": 0}).json()
    second = client.get("/api/v1/customers", params={"limit": 3, "offset": 3}).json()
    ids = [r["customer_id"] for r in whole["data"]]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert [r["customer_id"] for r in first["data"]] == ids[:3]
    assert [r["customer_id"] for r in second["data"]] == ids[3:]
    assert second["meta"]["limit"] == 3 and second["meta"]["offset"] == 3
    assert second["total"] == whole["total"] > 6


def test_customer_search_trims_the_id_prefix(client):
    """The e-mail and name parts of q were trimmed, the id prefix not: a pasted " C001 "
    found nobody (ids are stored trimmed); a blank q is no filter."""
    ids = [r["customer_id"] for r in client.get("/api/v1/customers", params={"q": "C001"}).json()["data"]]
    assert "C001" in ids
    for q in (" C001", "C001 ", "\tC001\n"):
        assert [r["customer_id"] for r in client.get("/api/v1/customers", params={"q": q}).json()["data"]] == ids
    everyone = client.get("/api/v1/customers", params={"limit": 1}).json()["total"]
    assert client.get("/api/v1/customers", params={"q": "  ", "limit": 1}).json()["total"] == everyone


def test_customers_without_a_record_are_found(served_project, tokens, tmp_path):
    """A project may have no customers source (only transactions: the run knows its
    customers from them) or records of some customers only; the search read ``customers``
    alone and found nobody the run had segments for. The fixture's store with every record
    but C001's and C002's removed after the run, as such a project's store is."""
    import shutil

    from fastapi.testclient import TestClient

    from segflow.server import ServerSettings, create_app

    directory = tmp_path / "proj"
    directory.mkdir()
    for name in ("segflow.toml", "segflow.duckdb"):
        shutil.copy(served_project / name, directory / name)
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    con.execute("DELETE FROM customers WHERE customer_id NOT IN ('C001', 'C002')")
    known = [r[0] for r in con.execute("SELECT customer_id FROM customer_features ORDER BY 1").fetchall()]
    latest = con.execute("SELECT max(snapshot_date) FROM segment_assignments WHERE scheme = 'rfm'").fetchone()[0]
    rfm = dict(con.execute("SELECT customer_id, segment FROM segment_assignments WHERE scheme = 'rfm' "
                           "AND snapshot_date = ?", [latest]).fetchall())
    con.close()
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0, warm=False))
    headers = {"authorization": f"Bearer {tokens['analyst']}"}
    with TestClient(app, base_url="https://testserver", headers=headers) as c:
        c00 = [i for i in known if i.startswith("C00")]
        body = c.get("/api/v1/customers", params={"q": "C00", "limit": 3, "offset": 1}).json()
        assert [r["customer_id"] for r in body["data"]] == c00[1:4] and body["total"] == len(c00)
        first, second, third = body["data"]
        assert first["email"] == "j***@example.com" and first["phone"] == "***23"  # C001: masked as before
        assert second["email"] == "=***@example.org" and third["customer_id"] == "C003"
        assert third["email"] is None and third["phone"] is None and third["region"] is None
        everyone = c.get("/api/v1/customers", params={"scheme": "rfm", "limit": 10_000}).json()
        assert {r["customer_id"]: r["segment"] for r in everyone["data"]} == rfm and everyone["total"] == len(rfm)
        one = c.get("/api/v1/customers/C003").json()
        assert one["meta"]["attributes"] == {} and one["meta"]["features"]["customer_id"] == "C003"
        assert {(r["scheme"], r["snapshot_date"]) for r in one["data"]} >= {("rfm", str(latest))}
        page = c.get("/customers", params={"q": "C003"})
        assert "1 match(es)" in page.text and 'href="/customers/C003"' in page.text
        assert c.get("/api/v1/customers/C999").status_code == 404


def test_a_date_parameter_is_read_as_the_cli_reads_a_date(client):
    """Every date parameter is YYYY-MM-DD (segflow.server._day.Day over segflow._dates.as_date):
    pydantic's date took 1751328000 and 20250701 as Unix times (the first is 2025-07-01) and
    said "Input should be a valid date or datetime, month value is outside expected range"."""
    latest = client.get("/api/v1/segments/rfm").json()["data"][0]["previous_snapshot"]
    assert client.get("/api/v1/segments/rfm", params={"snapshot": latest}).status_code == 200
    for path, name in (("/api/v1/segments/rfm", "snapshot"), ("/api/v1/migration/rfm", "from_date"),
                       ("/api/v1/profiles/rfm", "snapshot"), ("/api/v1/forecasts/rfm", "end"),
                       ("/api/v1/customers", "snapshot")):
        for value in ("2025-13-01", "1751328000", "20250701", "2025-W27-2", "latest", ""):
            r = client.get(path, params={name: value})
            assert r.status_code == 422, (path, value, r.text)
            assert r.json()["detail"] == f"{name}: {value!r} is not a date; expected YYYY-MM-DD", r.text
    page = client.get("/segments/rfm", params={"snapshot": "2025-13-01"})
    assert page.status_code == 422 and "is not a date; expected YYYY-MM-DD" in page.text


def test_customer_search_by_segment_is_checked_as_an_audience(client, served_project):
    """``segment`` and ``snapshot`` without ``scheme`` were dropped: ``?segment=Lost`` (and its
    CSV download) answered every customer, ``?snapshot=1999-01-01`` too, the snapshot left
    out of ``meta``; a mistyped segment of a scheme was 200 with no rows where the audiences
    answer 404 listing the segments. Now one check (``_views.segment_snapshot``) for both."""
    previous, latest = (str(d) for d in _sql_one(
        served_project, "SELECT max(snapshot_date) FILTER (WHERE snapshot_date < (SELECT max(snapshot_date) "
        "FROM segment_assignments WHERE scheme = 'rfm')), max(snapshot_date) FROM segment_assignments "
        "WHERE scheme = 'rfm'", []))
    segment, n = _sql_one(served_project, "SELECT segment, count(*) FROM segment_assignments WHERE scheme = 'rfm' "
                          "AND snapshot_date = ? GROUP BY 1 ORDER BY 2, 1 LIMIT 1", [previous])
    for params, detail in (({"segment": segment}, "segment needs scheme"),
                           ({"snapshot": previous, "format": "csv"}, "snapshot needs scheme"),
                           ({"segment": segment, "snapshot": previous, "format": "csv"},
                            "segment and snapshot need scheme")):
        r = client.get("/api/v1/customers", params={"limit": 1, **params})
        assert r.status_code == 422 and r.json()["detail"].startswith(detail + ": "), r.text[:200]
    typo = {"scheme": "rfm", "segment": "NoSuchSegment"}
    r = client.get("/api/v1/customers", params=typo)
    assert r.status_code == 404 and r.json() == client.get("/api/v1/audiences", params=typo).json()
    assert segment in r.json()["detail"]
    for params in ({"scheme": "rfm", "snapshot": "1999-01-01"}, {"scheme": "nosuch", "segment": segment}):
        r = client.get("/api/v1/customers", params={**params, "format": "csv"})
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", r.text[:200]
    body = client.get("/api/v1/customers", params={"scheme": "rfm", "segment": segment, "snapshot": previous}).json()
    assert body["total"] == n and body["meta"]["snapshot"] == previous
    assert {row["segment"] for row in body["data"]} == {segment}
    assert client.get("/api/v1/customers", params={"scheme": "rfm", "limit": 1}).json()["meta"]["snapshot"] == latest


def _sql_one(directory, query, params):
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    try:
        return con.execute(query, params).fetchone()
    finally:
        con.close()


def test_migration_dates_are_checked_alike_for_the_matrix_its_cells_and_pages(client):
    """The cell's customers took reversed or equal dates the matrix refused (200 with the
    cell read backwards): one check (``_views.snapshot_pair``) for every migration route."""
    dates = [r["snapshot_date"] for r in client.get("/api/v1/snapshots/rfm").json()["data"]]
    cell = {"from_segment": "Champions", "to_segment": "Champions"}
    for a, b in ((dates[3], dates[1]), (dates[2], dates[2])):
        want = {"detail": f"from_date ({a}) must be before to_date ({b})"}
        dates_ab = {"from_date": a, "to_date": b}
        for path in ("/api/v1/migration/rfm", "/api/v1/migration/rfm/customers", "/api/v1/migration/rfm/value"):
            r = client.get(path, params={**dates_ab, **cell})
            assert (r.status_code, r.json()) == (400, want), (path, r.text[:200])
        for path in ("/migration/rfm", "/migration/rfm/customers"):
            page = client.get(path, params={**dates_ab, **cell}, headers={"accept": "text/html"})
            assert page.status_code == 400 and want["detail"] in page.text, path


def test_migration_to_date_alone_compares_with_the_snapshot_before(client):
    """``to_date`` alone was refused unless the second-to-last snapshot came before it
    (``from_date`` defaulted to it): now the snapshot before ``to_date``; the first snapshot
    alone is a clear 400."""
    dates = [r["snapshot_date"] for r in client.get("/api/v1/snapshots/rfm").json()["data"]]
    body = client.get("/api/v1/migration/rfm", params={"to_date": dates[1]}).json()
    assert (body["meta"]["from_date"], body["meta"]["to_date"]) == (dates[0], dates[1])
    page = client.get("/migration/rfm", params={"to_date": dates[2]}, headers={"accept": "text/html"})
    assert page.status_code == 200 and f"Migration: rfm, {dates[1]} → {dates[2]}" in page.text
    first = {"detail": f"to_date ({dates[0]}) is the first snapshot of scheme 'rfm': no earlier snapshot "
                       "to compare with; give a later to_date"}
    r = client.get("/api/v1/migration/rfm", params={"to_date": dates[0]})
    assert (r.status_code, r.json()) == (400, first)
    page = client.get("/migration/rfm", params={"to_date": dates[0]}, headers={"accept": "text/html"})
    assert page.status_code == 400 and "is the first snapshot of scheme" in page.text


def _stayed(directory, scheme, segment, pair):
    """Customers in ``segment`` of ``scheme`` at both snapshots of ``pair``, counted in SQL."""
    return _sql_one(directory, """
        SELECT count(*) FROM segment_assignments a JOIN segment_assignments b USING (customer_id)
        WHERE a.scheme = ? AND b.scheme = ? AND a.snapshot_date = ? AND b.snapshot_date = ?
          AND a.segment = ? AND b.segment = ?""", [scheme, scheme, *pair, segment, segment])[0]


def test_migration_cell_customers_default_their_dates_as_the_matrix(client, served_project):
    """A cell's customers required both dates (422 "from_date: Field required; to_date:
    Field required") while docs/server.md and the matrix default them: ``to_date`` the
    latest snapshot, ``from_date`` the one before ``to_date``; the API and its page."""
    dates = [r["snapshot_date"] for r in client.get("/api/v1/snapshots/rfm").json()["data"]]
    cell = {"from_segment": "Champions", "to_segment": "Champions"}
    for params, pair in (({}, (dates[-2], dates[-1])), ({"to_date": dates[2]}, (dates[1], dates[2])),
                         ({"from_date": dates[1]}, (dates[1], dates[-1]))):
        r = client.get("/api/v1/migration/rfm/customers", params={**cell, **params})
        assert r.status_code == 200, r.text[:200]
        body = r.json()
        assert (body["meta"]["from_date"], body["meta"]["to_date"]) == pair
        assert body["total"] == _stayed(served_project, "rfm", "Champions", pair) > 0
    want = _stayed(served_project, "rfm", "Champions", (dates[-2], dates[-1]))
    page = client.get("/migration/rfm/customers", params=cell, headers={"accept": "text/html"})
    assert page.status_code == 200 and f"Champions → Champions ({want:,} customers)" in page.text
    assert f"from_date={dates[-2]}&amp;to_date={dates[-1]}" in page.text  # its JSON/CSV links name the pair
    r = client.get("/api/v1/migration/rfm/customers", params={**cell, "to_date": dates[0]})
    assert r.status_code == 400 and "is the first snapshot of scheme 'rfm'" in r.json()["detail"]


#: E-mails the engine's lower() and trim() normalise unlike Python's str.strip().lower()
#: (the exports' hash), on customers C003-C007.
ODD_EMAILS = {"C003": "\u0130pek@Example.com", "C004": "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3@x.gr",
              "C005": "\u00a0Ann@Example.com\u00a0", "C006": "\tbob@example.org ", "C007": "Zo\u00eb@Example.com"}


def test_customer_search_by_e_mail_matches_as_the_exports_hash(served_project, tokens, tmp_path):
    """The search compared the engine's ``lower()`` of both sides, untrimmed, while the
    exports and the CSV downloads hash ``str.strip().lower()``: ``οδυσσευς@x.gr`` (the
    address in lower case, final sigma) did not find ``ΟΔΥΣΣΕΥΣ@x.gr``, ``i̇pek@example.com``
    not ``İpek@Example.com``, and an address stored with a no-break space or a tab around it
    was found by nothing but itself with the same spaces; ``ipek@example.com``, another
    address with another hash, found İpek. Now a search finds exactly the customers whose
    ``email_sha256`` is the hash of the searched text."""
    import csv
    import hashlib
    import io
    import shutil

    from fastapi.testclient import TestClient

    from segflow.server import ServerSettings, create_app

    directory = tmp_path / "proj"
    directory.mkdir()
    for name in ("segflow.toml", "segflow.duckdb"):
        shutil.copy(served_project / name, directory / name)
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    con.executemany("UPDATE customers SET email = ? WHERE customer_id = ?", [[v, k] for k, v in ODD_EMAILS.items()])
    con.close()
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0, warm=False))
    searches = {
        "\u0130pek@Example.com": ["C003"], "i\u0307pek@example.com": ["C003"], "ipek@example.com": [],
        "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3@x.gr": ["C004"],
        "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2@x.gr": ["C004"],  # final sigma
        "\u039f\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2@X.GR": ["C004"],
        "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c3@x.gr": [],  # a non-final sigma: another hash
        "ann@example.com": ["C005"], "\u2003ANN@example.COM\u00a0": ["C005"], "bob@example.org": ["C006"],
        "ZO\u00cb@example.com": ["C007"], "JANE.DOE@example.com": ["C001"], "nobody@example.com": [],
    }
    headers = {"authorization": f"Bearer {tokens['analyst']}"}
    with TestClient(app, base_url="https://testserver", headers=headers) as c:
        download = c.get("/api/v1/customers", params={"format": "csv"})
        hashes = {r["customer_id"]: r["email_sha256"] for r in csv.DictReader(io.StringIO(download.text))}
        for q, want in searches.items():
            found = [r["customer_id"] for r in c.get("/api/v1/customers", params={"q": q}).json()["data"]]
            assert found == want, q
            digest = hashlib.sha256(q.strip().lower().encode()).hexdigest()
            assert sorted(k for k, v in hashes.items() if v == digest) == want, q
        page = c.get("/customers", params={"q": "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2@x.gr"})
        assert "1 match(es)" in page.text and 'href="/customers/C004"' in page.text


def test_migration_pairs_follow_the_library_rule(client, served_project):
    """The server kept its own copy of the snapshot-pair rule: now both use
    segflow.migration._transitions.snapshot_pair (Project.snapshot_pair), so the API answers
    the library's pair, or its message as a 400."""
    from segflow.errors import SegflowError
    from segflow.project import Project

    with Project.open(served_project, read_only=True) as project:
        dates = project.snapshot_dates("rfm")
        cases = [({}, (dates[-2], dates[-1])), ({"to_date": dates[2]}, (dates[1], dates[2])),
                 ({"from_date": dates[1]}, (dates[1], dates[-1])),
                 ({"from_date": dates[0], "to_date": dates[3]}, (dates[0], dates[3])),
                 ({"to_date": dates[0]}, None), ({"from_date": dates[3], "to_date": dates[1]}, None)]
        for params, pair in cases:
            try:
                want = project.snapshot_pair("rfm", **params)
            except SegflowError as exc:
                want = str(exc)
            assert want == pair if pair else isinstance(want, str)
            r = client.get("/api/v1/migration/rfm", params={k: str(v) for k, v in params.items()})
            if pair:
                meta = r.json()["meta"]
                assert (r.status_code, meta["from_date"], meta["to_date"]) == (200, *map(str, pair))
            else:
                assert (r.status_code, r.json()) == (400, {"detail": want}), params
