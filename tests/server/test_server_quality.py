"""``/api/v1/quality``: the quarantine's example reasons quote row values (customer ids):
analysts and admins see them, viewers only the counts; the example is the same every time."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient


def test_viewers_get_quarantine_counts_without_examples(tmp_path):
    from segflow.project import Project
    from segflow.server import ServerSettings, create_app
    from segflow.server._tokens import create_token

    directory = tmp_path / "proj"
    project = Project.init(directory)
    rows = [("shop", "tx.csv", n, f"raw {n}", "unknown_customer",
             f"customer id 'C{n:03d}' is not in the customers table", "customer_id", "L1",
             dt.datetime(2024, 1, 1)) for n in (7, 3, 5)]
    rows.append(("shop", "tx.csv", 9, "raw 9", "missing_ts", "ts is missing", "ts", "L1",
                 dt.datetime(2024, 1, 1)))
    rows.append(("crm", "crm.csv", 4, "raw 4", "unparseable",
                 "'jane.doe@example.com' is not a date (birth_date); phone '+44 20 7946 0123'",
                 "birth_date", "L2", dt.datetime(2024, 1, 1)))
    with project.store.transaction() as con:
        con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        tokens = {role: create_token(con, role, name=role)[0] for role in ("viewer", "analyst")}
        tokens["analyst, pii=include"] = tokens["analyst"]
    project.store.raw.execute("CHECKPOINT")
    project.close()
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"],
                                    poll_seconds=0))
    got = {}
    for role, token in tokens.items():
        with TestClient(app, base_url="https://testserver",
                        headers={"authorization": f"Bearer {token}"}) as c:
            r = c.get("/api/v1/quality" + ("?pii=include" if "include" in role else ""))
            assert r.status_code == 200, r.text
            got[role] = {q["rule"]: q for q in r.json()["meta"]["quarantine"]}
    assert got["viewer"]["unknown_customer"] == {"source": "shop", "rule": "unknown_customer",
                                                 "rows": 3}
    assert "C00" not in str(got["viewer"])
    # the analyst's example: the first quarantined row of the rule (row 3), every time
    assert got["analyst"]["unknown_customer"]["example"] == \
        "customer id 'C003' is not in the customers table"
    assert got["analyst"]["missing_ts"] == {"source": "shop", "rule": "missing_ts", "rows": 1,
                                            "example": "ts is missing"}
    # an address or number a reason quotes: masked as the exports mask them, unless asked
    assert got["analyst"]["unparseable"]["example"] == \
        "'j***@example.com' is not a date (birth_date); phone '***23'"
    assert got["analyst, pii=include"]["unparseable"]["example"] == \
        "'jane.doe@example.com' is not a date (birth_date); phone '+44 20 7946 0123'"
    assert "jane" not in str(got["viewer"]) and "jane" not in str(got["analyst"])


def test_the_report_masks_addresses_and_numbers_its_quarantine_examples_quote():
    """The report goes to every team: its "Quarantined rows by rule" table shows an example
    reason with the address or number it quotes masked (the same rule as the server's)."""
    from types import SimpleNamespace

    import pandas as pd

    from segflow.report._report import quality_section

    ctx = SimpleNamespace(
        reconciliation=pd.DataFrame(), role="analyst",
        audit=pd.DataFrame({"check": [], "severity": []}),
        quarantine_reasons=pd.DataFrame({
            "source": ["crm"], "rule": ["unparseable"], "rows": [2],
            "example": ["'jane.doe@example.com' is not a date; phone '+44 20 7946 0123'"]}))
    html = "".join(str(b) for b in quality_section(ctx).blocks)  # type: ignore[arg-type]
    assert "jane" not in html and "7946" not in html
    assert "j***@example.com" in html and "***23" in html
