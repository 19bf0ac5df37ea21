"""Postgres tables and audiences as export targets (a real PostgreSQL server on 127.0.0.1)."""

from __future__ import annotations

import hashlib

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from tests.exports._store import CUSTOMERS, EXPECTED_S3, HISTORY, S2, S3, build
from typer.testing import CliRunner

from segflow.campaigns import build_audience, customer_view
from segflow.cli import app
from segflow.exports import crm_segment_list, export_audience, export_segments
from segflow.project import Project

runner = CliRunner()


@pytest.fixture()
def project(tmp_path):
    build(tmp_path / "shop")
    with Project.open(tmp_path / "shop") as p:
        yield p


def _pg_rows(url: str, query: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as con:
        return con.execute(query).fetchall()


@pytest.mark.postgres
def test_postgres_full_then_changes_mirrors_the_latest_list(project, postgres):
    store = project.store
    first = export_segments(store, "rfm", postgres, table="crm_rfm", mode="changes", as_of=S2)
    assert first.mode == "changes" and first.since_snapshot is None  # every customer new
    at_s2 = {c: segs[1] for c, segs in HISTORY.items() if segs[1] is not None}
    assert dict(_pg_rows(postgres, "SELECT customer_id, segment FROM crm_rfm")) == at_s2
    second = export_segments(store, "rfm", postgres, table="crm_rfm", mode="changes")
    assert second.mode == "changes" and second.rows == 5
    # after the upsert and the delete the table holds the segments of the list at S3 (the
    # fields that move for everyone, periods_in_segment and scores, only with a full export)
    cols = ["customer_id", "segment", "previous_segment", "last_change_date", "email_sha256"]
    got = _pg_rows(postgres, f"SELECT {', '.join(cols)} FROM crm_rfm ORDER BY customer_id")
    full = crm_segment_list(store, "rfm", S3).select(*cols).to_pyarrow().to_pylist()
    assert got == [tuple(r[c] for c in cols) for r in full]
    # the table mirrors the list: no change-log columns
    pg_cols = {r[0] for r in _pg_rows(postgres, "SELECT column_name FROM information_schema.columns "
                                                "WHERE table_name = 'crm_rfm'")}
    assert not {"change", "segment_at_since"} & pg_cols
    assert {c for c, *_ in got} == set(EXPECTED_S3)
    # Postgres keeps values unchanged (no formula prefix), and no clear e-mail was written
    assert dict((c, s) for c, s, *_ in got)["C3"] == HISTORY["C3"][2]
    assert hashlib.sha256(b"ann@example.com").hexdigest() in {row[-1] for row in got}
    # the log keeps the URL, without a password
    assert store.sql("SELECT target FROM export_log")["target"].to_pylist()[0].endswith("table crm_rfm")


@pytest.mark.postgres
def test_postgres_full_export_replaces_only_its_scheme(project, postgres):
    store = project.store
    export_segments(store, "rfm", postgres, table="crm_all", as_of=S2)
    _pg_rows(postgres, "SELECT 1")
    import psycopg

    with psycopg.connect(postgres.replace("postgres://", "postgresql://"), autocommit=True) as con:
        con.execute("INSERT INTO crm_all (scheme, customer_id, segment) VALUES ('other', 'X', 'Y')")
    export_segments(store, "rfm", postgres, table="crm_all")
    rows = _pg_rows(postgres, "SELECT scheme, count(*) FROM crm_all GROUP BY 1 ORDER BY 1")
    assert rows == [("other", 1), ("rfm", len(EXPECTED_S3))]


def test_postgres_without_table_is_a_clear_error(project):
    directory = str(project.directory)
    project.close()
    res = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "rfm", "--to",
                              "postgresql://nobody@127.0.0.1:1/db"])
    assert res.exit_code == 1 and "needs --table NAME" in res.output


def test_audience_with_holdout_and_hashed_contacts(project, tmp_path):
    aud = build_audience(customer_view(project.store, S3), segments={"rfm": ["Loyal", "At risk"]},
                         holdout=0.25, seed=3, name="winback")
    out = tmp_path / "winback.parquet"
    result = export_audience(project.store, aud, out)
    t = pq.read_table(out).to_pandas().set_index("customer_id")
    members = {c for c, segs in HISTORY.items() if segs[2] in ("Loyal", "At risk")}
    assert set(t.index) == members and result.rows == len(members)
    assert int(t["holdout"].sum()) == round(0.25 * len(members))
    assert (t["holdout"] == (t["group"] == "holdout")).all()
    for c in members:
        email = CUSTOMERS[c][0]
        assert t.loc[c, "email_sha256"] == hashlib.sha256(email.strip().lower().encode()).hexdigest()
    assert "email" not in t.columns
    assert project.store.sql("SELECT kind, export_name FROM export_log").to_pylist() == [
        {"kind": "audience", "export_name": "winback"}]


def test_audience_with_a_column_nobody_has_a_value_in(project, tmp_path):
    """A scheme's rank column that is empty for every member (an unordered scheme's, as in
    the demo) is of Arrow's null type: the join with the contacts failed on it (the example
    of docs/exports.md ended in a traceback); it is written, empty, in its place."""
    aud = build_audience(customer_view(project.store, S3), segments={"rfm": ["Loyal", "At risk"]},
                         holdout=0.25, seed=3, name="winback")
    aud.members.insert(2, "browse_no_buy__rank", None)
    for fmt in ("parquet", "csv"):
        out = tmp_path / f"winback.{fmt}"
        result = export_audience(project.store, aud, out)
        t = pq.read_table(out) if fmt == "parquet" else pa_csv.read_csv(out)
        assert result.rows == t.num_rows == len(aud.members)
        assert t.column_names[:4] == ["audience", *aud.members.columns[:3]]
        assert t["browse_no_buy__rank"].null_count == t.num_rows
        assert "email_sha256" in t.column_names


def test_audience_cli_csv(project, tmp_path):
    directory = str(project.directory)
    project.close()
    out = tmp_path / "aud.csv"
    res = runner.invoke(app, ["export", "audience", "-p", directory, "--segment", "rfm=Loyal",
                              "--holdout", "0", "--to", str(out), "--pii", "include"])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    loyal = sorted(c for c, segs in HISTORY.items() if segs[2] == "Loyal")
    assert len(lines) == 1 + len(loyal)
    assert CUSTOMERS["C1"][0] in out.read_text()  # included on request


def test_the_log_never_keeps_a_password():
    from segflow.exports._export import _redact

    assert _redact("postgresql://crm:s3cret@db.internal:5432/crm") == "postgresql://crm:***@db.internal:5432/crm"
    assert _redact("postgresql://crm@127.0.0.1/crm") == "postgresql://crm@127.0.0.1/crm"
    # libpq reads a password in the query too; a webhook's token likewise
    assert _redact("postgresql://crm@db/crm?password=s3cret&sslmode=require") == \
        "postgresql://crm@db/crm?password=***&sslmode=require"
    assert _redact("https://u:p@hooks.example.com/x?token=abc&a=1") == \
        "https://u:***@hooks.example.com/x?token=***&a=1"


def test_a_table_with_a_file_target_is_refused(project, tmp_path):
    """`--to x.csv --table customers` wrote the file and ignored the table without a word."""
    from segflow.errors import InputError

    with pytest.raises(InputError, match="names a Postgres table"):
        export_segments(project.store, "rfm", tmp_path / "x.csv", table="customers")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_export_files_get_the_mode_the_umask_gives(project, tmp_path, umask):
    """Files were created by mkstemp and renamed into place, so they were 0600 whatever the
    umask: a CRM loader running as another user could not read them. Now they get the mode
    of any file the user creates, as a plain open() does beside them."""
    import os
    import stat

    old = os.umask(umask)
    try:
        with open(tmp_path / "plain.txt", "w"):
            pass
        export_segments(project.store, "rfm", tmp_path / "crm.csv")
        export_segments(project.store, "rfm", tmp_path / "crm.parquet", name="pq")
    finally:
        os.umask(old)
    want = stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode)
    assert want == 0o666 & ~umask
    assert [stat.S_IMODE(os.stat(tmp_path / f).st_mode) for f in ("crm.csv", "crm.parquet")] == [want, want]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []
