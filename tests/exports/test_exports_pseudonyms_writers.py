"""The other commands writing the store's customer ids to a file or stdout (`segment --out`,
`segment cluster --out`, `clv score -p --output`, `churn score --out/--json`, `migrate
who`) wrote an id that is an e-mail address or a phone number in clear, while `segflow export segments` writes the
project's pseudonymous key for it. Checked on a copy of the run pipeline fixture whose first
customers are keyed by e-mail, phone and formula-like ids; keys recomputed here with ``hmac``."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat

import duckdb
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from tests.exports._ids import pid_key as _key
from tests.exports._ids import rename_customers
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()

#: New ids of the fixture's first four customers: an address, a phone number, an id holding
#: an address, and one a spreadsheet would run as a formula (not personal).
NEW = ["ann@example.com", "+44 20 7946 0002", '=HYPERLINK("mailto:zed@example.com")',
       '=HYPERLINK("http://x.test","y")']

#: The same ids written in clear (--pii include) to CSV: the formula-like ones quoted.
CLEAR = {NEW[0], NEW[1], "'" + NEW[2], "'" + NEW[3]}


@pytest.fixture(scope="module")
def shop(ran_fixture, tmp_path_factory):
    """A copy of the run fixture project with its first four customers' ids replaced
    (every base table holding customer_id); (its folder, old id -> new id)."""
    root, _ = ran_fixture
    directory = tmp_path_factory.mktemp("keyed_run") / "proj"
    shutil.copytree(root, directory)
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    old = [r[0] for r in con.execute("SELECT customer_id FROM customers ORDER BY 1 LIMIT 4").fetchall()]
    con.close()
    rename_customers(directory / "segflow.duckdb", dict(zip(old, NEW, strict=True)))
    return directory


def _ids(path) -> list[str]:
    return pacsv.read_csv(path).column(0).to_pylist()


def _shown(directory, ids) -> set[str]:
    """What the file should hold for the changed customers among ``ids`` (its first column,
    as `export segments` writes them): keys, and the formula-like id with its quote."""
    keys = {_key(directory, i): i for i in NEW[:3]}
    return {i for i in ids if i in keys or i.startswith("'=")}


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


#: What segflow._private says on stderr of a file written with --pii include.
NOTE = "holds personal data in clear (--pii include): written with mode 0600"


def _run(args: list[str]):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


def test_segment_out_keys_ids_as_export_segments(shop, tmp_path, umask_022):
    """`segment --out` writes the keys `export segments` writes; a file with the ids in clear
    (--pii include) is its owner's only (0600), the keyed one keeps the umask's 0644."""
    seg, out, clear = tmp_path / "seg.csv", tmp_path / "a.csv", tmp_path / "clear.csv"
    _run(["export", "segments", "-p", str(shop), "-s", "rfm", "--to", str(seg)])
    want = {_key(shop, i) for i in NEW[:3]} | {"'" + NEW[3]}
    assert _shown(shop, _ids(seg)) == want  # the four customers as export segments writes them
    res = _run(["segment", "-p", str(shop), "--scheme", "rfm", "--out", str(out)])
    assert res.stderr.count("pseudonymous keys") == 1 and "3 customer id(s)" in res.stderr
    assert _shown(shop, _ids(out)) == want and sorted(_ids(out)) == sorted(_ids(seg))
    assert _mode(out) == 0o644 and _mode(seg) == 0o644 and NOTE not in res.stderr
    res = _run(["segment", "-p", str(shop), "--scheme", "rfm", "--out", str(clear), "--pii", "include"])
    assert CLEAR <= set(_ids(clear))
    assert _mode(clear) == 0o600 and res.stderr.count(NOTE) == 1


def test_cluster_out_of_the_project_keys_ids(shop, tmp_path, umask_022):
    """`segment cluster --out` of the project's features keys the ids; the file rewritten in
    clear (--pii include) becomes 0600, a Parquet one too (written by Arrow, not DuckDB's
    COPY, which replaces an existing file by one of the umask's mode)."""
    out = tmp_path / "c.csv"
    args = ["segment", "cluster", "-p", str(shop), "--k", "2", "--bootstrap", "0", "--out", str(out)]
    _run(args)
    want = {_key(shop, i) for i in NEW[:3]} | {"'" + NEW[3]}
    assert _shown(shop, _ids(out)) == want and not any("@" in i for i in _ids(out))
    assert _mode(out) == 0o644
    _run([*args, "--pii", "include"])
    assert CLEAR <= set(_ids(out)) and _mode(out) == 0o600
    parquet = tmp_path / "c.parquet"
    parquet.write_bytes(b"")  # an existing 0644 file
    _run([*args[:-1], str(parquet), "--pii", "include"])
    assert _mode(parquet) == 0o600 and set(NEW[:2]) <= set(pq.read_table(parquet).column(0).to_pylist())


def test_clv_score_of_the_project_keys_ids(shop, tmp_path, umask_022):
    out = tmp_path / "clv.csv"
    args = ["clv", "score", "-p", str(shop), "--snapshot", "2024-05-01", "--penalizer", "0.01",
            "--output", str(out)]
    _run(args)
    ids = _ids(out)
    assert _key(shop, "ann@example.com") in ids and not any("@" in i or "7946" in i for i in ids)
    assert _mode(out) == 0o644
    _run([*args, "--pii", "include"])
    assert "ann@example.com" in _ids(out) and _mode(out) == 0o600


def test_churn_scores_out_and_json_key_ids(shop, tmp_path, umask_022):
    """The scores `churn score` prints (--json) and writes (--out) after storing them: keyed
    (the model's training is another test's: the scores are made here)."""
    from segflow.cli._churn import _keyed, _write_out
    from segflow.models._churn_train import ChurnScores

    frame = pd.DataFrame({"customer_id": NEW + ["C9"], "churn_probability": [0.1, 0.2, 0.3, 0.4, 0.5],
                          "risk_band": ["low"] * 5})
    scores = ChurnScores(frame, dt.date(2024, 6, 1), "churn_90d", [0.3, 0.6])
    keyed = _keyed(scores, "hash", shop)
    want = [_key(shop, i) for i in NEW[:3]] + NEW[3:] + ["C9"]
    assert keyed.frame["customer_id"].tolist() == want
    assert [r["customer_id"] for r in json.loads(json.dumps(keyed.to_dict()))["data"]] == want
    _write_out(keyed, tmp_path / "s.csv")
    written = pacsv.read_csv(tmp_path / "s.csv").column("customer_id").to_pylist()
    assert written == want[:3] + ["'" + NEW[3], "C9"] and _mode(tmp_path / "s.csv") == 0o644
    _write_out(scores, tmp_path / "s.parquet", private=True)  # what --pii include writes
    assert _mode(tmp_path / "s.parquet") == 0o600
    assert pq.read_table(tmp_path / "s.parquet").column("customer_id").to_pylist() == NEW + ["C9"]
    assert _keyed(scores, "include", shop) is scores and scores.frame["customer_id"].tolist() == NEW + ["C9"]


def test_migrate_who_keys_ids_as_the_server(shop):
    """`migrate who` (the list and --json) wrote the ids of a transition cell in clear, an
    address or a phone number among them, where the server's /migration/SCHEME/customers
    and `export segments` write keys. The cell of ann@example.com between the last two rfm
    snapshots, listed here with SQL: keys for the personal ids, the others as stored, in the
    order of the stored ids; --pii include writes them in clear."""
    con = duckdb.connect(str(shop / "segflow.duckdb"), read_only=True)
    try:
        frm, to = [r[0] for r in con.execute(
            "SELECT DISTINCT snapshot_date FROM segment_assignments WHERE scheme = 'rfm' "
            "ORDER BY 1 DESC LIMIT 2").fetchall()][::-1]
        seg = dict(con.execute(
            "SELECT snapshot_date, segment FROM segment_assignments WHERE scheme = 'rfm' "
            "AND customer_id = ? AND snapshot_date IN (?, ?)", [NEW[0], frm, to]).fetchall())
        cell = [r[0] for r in con.execute(
            "SELECT coalesce(a.customer_id, b.customer_id) AS id FROM "
            "(SELECT * FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = ?) a "
            "FULL JOIN (SELECT * FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = ?) b "
            "USING (customer_id) WHERE coalesce(a.segment, '(new)') = ? AND coalesce(b.segment, '(gone)') = ? "
            "ORDER BY id", [frm, to, seg.get(frm, "(new)"), seg[to]]).fetchall()]
    finally:
        con.close()
    assert NEW[0] in cell
    args = ["migrate", "who", "-p", str(shop), "--scheme", "rfm", "--from", seg.get(frm, "(new)"),
            "--to", seg[to], "--limit", "0"]
    res = _run(args)
    want = [_key(shop, i) if i in NEW[:3] else i for i in cell]  # the key file exists now
    assert res.stdout.splitlines() == want and "pseudonymous keys" in res.stderr
    res = _run([*args, "--json"])
    assert [r["customer_id"] for r in json.loads(res.stdout)["data"]] == want
    res = _run([*args, "--json", "--pii", "include"])
    assert [r["customer_id"] for r in json.loads(res.stdout)["data"]] == cell
