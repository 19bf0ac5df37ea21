"""Customer ids that are themselves e-mail addresses or phone numbers (shops key customers
by e-mail): every export that keeps personal data out wrote them in clear, in the
``customer_id`` column, beside a masked or hashed ``email``. Now they are pseudonymous keys,
HMAC-SHA-256 under the project's secret, checked here with the standard library's ``hmac``;
and the numeric content check (phone numbers read as numbers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import warnings

import duckdb
import ibis
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from tests.exports._ids import pid_key as _key
from tests.exports._ids import rename_customers
from tests.exports._store import EXPECTED_S3, S2, build
from typer.testing import CliRunner

from segflow.cli import app
from segflow.exports import export_segments, protect_columns
from segflow.project import Project

runner = CliRunner()

#: The hand-written store's ids as a shop keying customers by e-mail (or phone) writes them;
#: C3 keeps its plain id (a store may mix both).
NEW_IDS = {"C1": "ann@example.com", "C2": "+44 20 7946 0002", "C4": "dee@example.net",
           "C5": "eve@example.com", "C6": "fay@example.com", "C7": "gus@example.com"}


@pytest.fixture()
def keyed(tmp_path):
    directory = build(tmp_path / "shop")
    rename_customers(directory / "segflow.duckdb", NEW_IDS)
    return directory


def _ids(path) -> list[str]:
    table = pq.read_table(path) if str(path).endswith(".parquet") else pacsv.read_csv(path)
    return table["customer_id"].to_pylist()


def test_ids_that_are_e_mails_are_keys_under_every_policy_but_include(keyed, tmp_path):
    """The same customer has the same key in every export (so lists join), the plain id C3
    stays, no address or number is left in a file, and ``include`` writes the ids."""
    clear = sorted([NEW_IDS.get(c, c) for c in EXPECTED_S3])
    with Project.open(keyed) as project:
        seen = {}
        for pii in ("hash", "mask", "omit"):
            out = tmp_path / f"{pii}.csv"
            result = export_segments(project.store, "rfm", out, pii=pii, name=pii)
            text = out.read_text()
            assert "@" not in text.replace("***@", "") and "7946 0002" not in text, pii
            assert result.ids_pseudonymised == len(EXPECTED_S3) - 1
            seen[pii] = _ids(out)
        want = sorted(i if i == "C3" else _key(keyed, i) for i in clear)
        assert sorted(seen["hash"]) == want and seen["hash"] == seen["mask"] == seen["omit"]
        masked = pacsv.read_csv(tmp_path / "mask.csv").to_pylist()
        by_key = {r["customer_id"]: r for r in masked}
        assert by_key[_key(keyed, "ann@example.com")]["email"] == "A***@Example.com"
        included = export_segments(project.store, "rfm", tmp_path / "in.parquet", pii="include", name="in")
        assert sorted(_ids(tmp_path / "in.parquet")) == clear and included.ids_pseudonymised == 0
        # an incremental export (a few rows) keys them alike
        export_segments(project.store, "rfm", tmp_path / "s2.csv", as_of=S2, pii="mask", name="inc")
        export_segments(project.store, "rfm", tmp_path / "delta.parquet", mode="changes", pii="mask", name="inc")
        delta = pq.read_table(tmp_path / "delta.parquet").to_pylist()
        assert delta and all(r["customer_id"] in want or r["customer_id"] == _key(keyed, "dee@example.net")
                             for r in delta)
        assert not any("@" in r["customer_id"] for r in delta)


def test_cli_says_so_once_and_explain_shows_the_key(keyed, tmp_path):
    out = tmp_path / "crm.csv"
    res = runner.invoke(app, ["export", "segments", "-p", str(keyed), "-s", "rfm", "--to", str(out), "--pii", "mask"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("pseudonymous keys") == 1 and "5 customer id(s)" in res.stderr
    assert (keyed / "segflow.duckdb.idkey").stat().st_mode & 0o077 == 0  # the owner's alone
    res = runner.invoke(app, ["export", "segments", "-p", str(keyed), "-s", "rfm", "--to", str(out),
                              "--pii", "include", "--name", "x"])
    assert res.exit_code == 0 and "pseudonymous" not in res.stderr
    res = runner.invoke(app, ["customers", "explain", "-p", str(keyed), "ann@example.com", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    key = _key(keyed, "ann@example.com")
    assert body["customer_id"] == body["master_id"] == key and body["members"] == [key]
    assert "ann@example.com" not in res.stdout and res.stderr.count("pseudonymous keys") == 1
    res = runner.invoke(app, ["customers", "explain", "-p", str(keyed), "ann@example.com", "--pii", "include"])
    assert res.exit_code == 0 and "customer ann@example.com" in res.stdout


def test_audiences_key_ids_as_the_segment_lists(keyed, tmp_path):
    out = tmp_path / "aud.csv"
    res = runner.invoke(app, ["export", "audience", "-p", str(keyed), "--segment", "rfm=Loyal", "--holdout", "0",
                              "--to", str(out), "--pii", "hash"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "@example" not in text and re.search(r"pid-[0-9a-f]{32}", text)
    assert sorted(_ids(out)) == sorted([_key(keyed, "ann@example.com"), _key(keyed, "gus@example.com")])
    camp = tmp_path / "camp.csv"  # segflow campaign audience writes the same keys
    res = runner.invoke(app, ["campaign", "audience", "-p", str(keyed), "--segment", "rfm=Loyal", "--holdout", "0",
                              "--out", str(camp), "--pii", "mask"])
    assert res.exit_code == 0, res.output
    assert sorted(_ids(camp)) == sorted(_ids(out)) and res.stderr.count("pseudonymous keys") == 1


def test_numeric_columns_of_phone_numbers_are_personal():
    """A column of whole numbers of 10 to 15 digits, as phone numbers read as numbers are
    (``contact`` as integers, ``mob`` as floats with a gap), is hashed and masked by the phone
    rules; amounts, counters, epoch times, ids and codes are not."""
    from segflow.exports._pii_content import PersonalContentWarning, content_kinds

    t = ibis.memtable(pa.table({
        "customer_id": [1, 2, 3, 4],                                        # a counter
        "contact": [447700900123, 447700900456, None, 7700900789],          # 3 of 3
        "mob": [447700900123.0, 2125550123.0, float("nan"), None],          # 2 of 3 (NaN not one)
        "total": [12.5, 3000.0, 99.0, 1e6],
        "seen_s": [1700000000, 1700000100, 1700000200, 1700000300],         # epoch seconds
        "seen_ms": [1700000000000, 1700000100000, 1700000200000, 1700000300000],
        "big": [5000000001, 5000000002, 5000000003, 5000000004],            # a dense range
        "order_ref": [5868390006853, 5868390016853, 5868390106853, 5868391006853],
        "ratio": [4477009001.5, 2125550123.25, 3125550123.75, 4125550123.5],  # no whole numbers
        "mobile_no": [447700900123.0, float("nan"), None, 7700900789.0],   # personal by name
    }))
    assert {c: k for c, (k, _) in content_kinds(t).items()} == {"contact": "phone", "mob": "phone"}
    with pytest.warns(PersonalContentWarning) as caught:
        hashed = protect_columns(t, "hash").to_pyarrow().to_pylist()
    assert any("whole numbers of 10 to 15 digits" in str(w.message) for w in caught)
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    assert [r["contact_sha256"] for r in hashed] == [sha("447700900123"), sha("447700900456"), None,
                                                     sha("7700900789")]
    assert [r["mob_sha256"] for r in hashed] == [sha("447700900123"), sha("2125550123"), None, None]
    assert [r["total"] for r in hashed] == [12.5, 3000.0, 99.0, 1e6]
    # a phone column read as floating point was hashed as "447700900123.0"'s digits, 4477009001230
    assert [r["mobile_no_sha256"] for r in hashed] == [sha("447700900123"), None, None, sha("7700900789")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PersonalContentWarning)
        masked = protect_columns(t, "mask").to_pyarrow().to_pylist()
    assert [r["mob"] for r in masked] == ["***23", "***23", None, None]


def test_the_plain_segment_list_keys_ids_that_are_e_mails_as_export_segments_does(keyed, tmp_path):
    """``segflow export --scheme S --out F`` (the list without a sub-command) wrote such ids
    in clear; now they are the same keys as ``export segments`` writes, unless --pii include."""
    out, clear = tmp_path / "plain.csv", tmp_path / "clear.csv"
    r = runner.invoke(app, ["export", "-p", str(keyed), "--scheme", "rfm", "--out", str(out)])
    assert r.exit_code == 0, r.output
    ids = _ids(out)
    assert "C3" in ids and not any("@" in i or "7946" in i for i in ids)
    keys = {_key(keyed, v): v for v in NEW_IDS.values()}
    assert len(set(ids)) == len(ids) and set(ids) - {"C3"} <= set(keys)
    r = runner.invoke(app, ["export", "-p", str(keyed), "--scheme", "rfm", "--out", str(clear),
                            "--pii", "include"])
    assert r.exit_code == 0, r.output
    assert sorted(_ids(clear)) == sorted(keys.get(i, i) for i in ids)  # each key is its id


#: Ids holding an address or a phone number without being exactly one, and plain ids.
HOLDING = ['"Ann" <ann@example.com>', "ann.smith@example.co.uk;carl@example.com", "tel:+447700900123",
           "+1 (202) 555-0142 ext 5"]
PLAIN = ["C000123", "10002345", "ORD-2024-000123", "A-1234567", "2024-01-05", "INV 2024/17"]


def test_ids_holding_an_address_or_a_phone_number_are_keys():
    """An id is personal when it contains what the quarantine reasons' masking masks (one rule:
    mask_personal_text changes it); plain ids, order codes and counters are not."""
    from segflow.exports._pii_text import mask_personal_text
    from segflow.exports._pseudonym import personal_ids, pseudonymise_values

    values = [*HOLDING, *PLAIN, "ann@example.com", None]
    assert personal_ids(pa.array(values, pa.string())).to_pylist() == [True] * 4 + [False] * 6 + [True, False]
    assert [mask_personal_text(v) != v for v in values[:-1]] == [True] * 4 + [False] * 6 + [True]
    secret = bytes(range(32))
    keys = pseudonymise_values(values, secret)
    assert keys[:4] == ["pid-" + hmac.new(secret, v.encode(), hashlib.sha256).hexdigest()[:32] for v in HOLDING]
    assert keys[4:] == values[4:-2] + [keys[-2], None] and keys[-2].startswith("pid-")


def test_a_replaced_key_file_is_read_again(tmp_path):
    """A server or a long session follows the key file: deleted (a new key is made) or
    replaced, the next key is the file's."""
    from segflow.exports._pseudonym import id_key

    store = tmp_path / "segflow.duckdb"
    first = id_key(store)
    path = tmp_path / "segflow.duckdb.idkey"
    assert first == bytes.fromhex(path.read_text().strip()) and id_key(store) == first
    path.unlink()
    second = id_key(store)
    assert second != first and second == bytes.fromhex(path.read_text().strip())
    other = tmp_path / "new.idkey"
    other.write_text("ab" * 32 + "\n")
    other.replace(path)  # another file in its place (a restored backup)
    assert id_key(store) == bytes.fromhex("ab" * 32)


def test_explain_finds_a_customer_by_its_key(keyed):
    """`customers explain pid-...` resolves the key as the server's /customers/pid-... does."""
    by_id = runner.invoke(app, ["customers", "explain", "-p", str(keyed), "ann@example.com", "--json"])
    key = _key(keyed, "ann@example.com")  # the key file is made by the first masked output
    by_key = runner.invoke(app, ["customers", "explain", "-p", str(keyed), key, "--json"])
    assert by_key.exit_code == 0, by_key.output
    assert json.loads(by_key.stdout) == json.loads(by_id.stdout)
    assert json.loads(by_key.stdout)["customer_id"] == key
    clear = runner.invoke(app, ["customers", "explain", "-p", str(keyed), key, "--pii", "include"])
    assert clear.exit_code == 0 and "customer ann@example.com" in clear.stdout
    missing = runner.invoke(app, ["customers", "explain", "-p", str(keyed), "pid-" + "0" * 32])
    assert missing.exit_code != 0 and "is not in the customers table" in missing.output


@pytest.mark.parametrize(("args", "option", "instead"), [
    (["--pii", "include", "segments", "-s", "rfm"], "--pii", "--pii"),
    (["--as-of", "2024-03-31", "segments", "-s", "rfm"], "--as-of", "--snapshot"),
    (["--scheme", "rfm", "audience", "--segment", "rfm=Loyal"], "--scheme", "--segment SCHEME=SEGMENT"),
])
def test_options_of_the_plain_list_before_a_sub_command_are_refused(keyed, tmp_path, args, option, instead):
    """`export --pii include segments ...` ran `segments` with its own --pii (hash): the group's
    option was silently dropped. Now one usage line names it and where it goes; nothing is written."""
    out = tmp_path / "x.csv"
    res = runner.invoke(app, ["export", *args, "-p", str(keyed), "--to", str(out)])
    assert res.exit_code == 2 and not out.exists()
    line = res.stderr.strip()
    assert "\n" not in line and f"{option} before '{args[2]}'" in line and f"give {instead} after" in line


def test_audit_examples_mask_ids_that_are_e_mails_in_the_report_and_by_default(keyed):
    """The audit's examples quoted ids in clear (``customer_id=ann@example.com`` under
    stale_customers) in report.html, which goes to every team, and in `segflow audit --json`."""
    from types import SimpleNamespace

    import pandas as pd

    from segflow.report._report import quality_section

    clear = runner.invoke(app, ["audit", "-p", str(keyed), "--json", "--pii", "include"])
    masked = runner.invoke(app, ["audit", "-p", str(keyed), "--json"])
    assert clear.exit_code == masked.exit_code == 0, masked.output
    stale = {c["check"]: c["examples"] for c in json.loads(clear.stdout)["data"]}["stale_customers"]
    assert "customer_id=ann@example.com" in stale and "customer_id=+44 20 7946 0002" in stale
    shown = {c["check"]: c["examples"] for c in json.loads(masked.stdout)["data"]}["stale_customers"]
    expected = {"customer_id=ann@example.com": "customer_id=a***@example.com",
                "customer_id=dee@example.net": "customer_id=d***@example.net",
                "customer_id=eve@example.com": "customer_id=e***@example.com",
                "customer_id=+44 20 7946 0002": "customer_id=***02", "customer_id=C3": "customer_id=C3"}
    assert shown == [expected[e] for e in stale]
    from segflow.quality import audit
    from segflow.store import Store

    with Store(keyed / "segflow.duckdb", read_only=True) as store:
        checks = audit(store).to_pandas()
    ctx = SimpleNamespace(reconciliation=pd.DataFrame(), audit=checks, role="analyst",
                          quarantine_reasons=pd.DataFrame({"rule": [], "example": []}))
    page = "".join(quality_section(ctx).blocks)
    assert "a***@example.com" in page and "example.com" in page
    assert not re.search(r"(ann|dee|eve|fay|gus)@", page) and "7946 0002" not in page


#: An id a spreadsheet would run as a formula, and one that also holds an address.
FORMULA_ID = '=HYPERLINK("http://x.test","y")'
MAILTO_ID = '=HYPERLINK("mailto:zed@example.com")'


def _segments_keys(keyed, tmp_path) -> list[str]:
    """The ids `export segments` writes for the store's customers (keys of the e-mail ids)."""
    with Project.open(keyed) as project:
        export_segments(project.store, "rfm", tmp_path / "seg.csv", pii="hash", name="seg")
    return _ids(tmp_path / "seg.csv")


def _id_file(tmp_path, ids: list[str], **columns) -> str:
    path = tmp_path / "ids.csv"
    pacsv.write_csv(pa.table({"customer_id": ids, **columns}), path)
    return str(path)


def test_campaign_audience_of_a_file_keys_its_ids_as_export_segments(keyed, tmp_path):
    """`campaign audience --customers FILE` wrote the file's ids as they were: now an id that
    is (or holds) an e-mail or phone number is the project's key, the one `export segments`
    writes for that customer; a formula-like id is neutralised in CSV; --pii include: clear."""
    segment_ids = _segments_keys(keyed, tmp_path)
    ann, phone = _key(keyed, "ann@example.com"), _key(keyed, "+44 20 7946 0002")
    assert ann in segment_ids and phone in segment_ids
    src = _id_file(tmp_path, ["ann@example.com", "+44 20 7946 0002", "C3", FORMULA_ID, MAILTO_ID],
                   clv=[5.0, 4.0, 3.0, 2.0, 1.0])
    out, clear, pq_out = tmp_path / "aud.csv", tmp_path / "clear.csv", tmp_path / "aud.parquet"
    args = ["campaign", "audience", "-p", str(keyed), "--customers", src, "--holdout", "0"]
    res = runner.invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("pseudonymous keys") == 1 and "3 customer id(s)" in res.stderr
    assert sorted(_ids(out)) == sorted([ann, phone, "C3", "'" + FORMULA_ID, _key(keyed, MAILTO_ID)])
    assert "example.com" not in out.read_text() and "7946" not in out.read_text()
    res = runner.invoke(app, [*args, "--out", str(pq_out), "--pii", "mask"])  # Parquet: as it is
    assert res.exit_code == 0, res.output
    assert sorted(_ids(pq_out)) == sorted([ann, phone, "C3", FORMULA_ID, _key(keyed, MAILTO_ID)])
    res = runner.invoke(app, [*args, "--out", str(clear), "--pii", "include"])
    assert res.exit_code == 0 and "pseudonymous" not in res.stderr, res.output
    assert sorted(_ids(clear)) == sorted(["ann@example.com", "+44 20 7946 0002", "C3",
                                          "'" + FORMULA_ID, "'" + MAILTO_ID])


def test_a_file_of_e_mail_ids_without_a_project_is_refused_unless_include(tmp_path):
    """No project, no secret: the ids are not written in clear by default, nor under a key of
    no project's; one line says what to do. Plain ids need no key."""
    src = _id_file(tmp_path, ["ann@example.com", "C3"], clv=[1.0, 2.0])
    out = tmp_path / "aud.csv"
    args = ["campaign", "audience", "-p", str(tmp_path), "--customers", src, "--holdout", "0", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and not out.exists()
    line = res.output.strip()
    assert "\n" not in line and f"file {src}, column 'customer_id'" in line and "--project" in line
    assert "ann@example.com" not in line and not list(tmp_path.glob("*.idkey"))
    res = runner.invoke(app, [*args, "--pii", "include"])
    assert res.exit_code == 0 and sorted(_ids(out)) == ["C3", "ann@example.com"], res.output
    plain = _id_file(tmp_path, ["C1", "C3"], clv=[1.0, 2.0])
    res = runner.invoke(app, [*args[:5], plain, *args[6:]])
    assert res.exit_code == 0 and sorted(_ids(out)) == ["C1", "C3"], res.output


def test_uplift_scores_out_keys_the_ids_of_the_scored_file(keyed, tmp_path):
    """`campaign uplift --scores-out` wrote the scored file's ids as they were: now the
    project's keys (those of `export segments`), a formula-like id neutralised, --pii include
    clear (one thread: gradient boosting's OpenMP threads on a busy machine are ~100x slower)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        _check_uplift_keys(keyed, tmp_path)


def _check_uplift_keys(keyed, tmp_path) -> None:
    n = 120
    ids = ["ann@example.com", FORMULA_ID] + [f"u{i}@example.com" if i % 2 else f"c{i}" for i in range(2, n)]
    src = _id_file(tmp_path, ids, arm=["T" if i % 2 else "C" for i in range(n)],
                   x=[(i % 10) / 10 for i in range(n)], y=[int(i % 3 == 0) for i in range(n)])
    out = tmp_path / "scored.csv"
    args = ["campaign", "uplift", "-p", str(keyed), "--responses", src, "--control", "C", "--outcome", "y",
            "--feature", "x", "--method", "class_transformation", "--scores-out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert res.stderr.count("pseudonymous keys") == 1 and f"{n // 2} customer id(s)" in res.stderr
    want = [_key(keyed, i) if "@" in i else "'" + i if i == FORMULA_ID else i for i in ids]
    assert _ids(out) == want and _key(keyed, "ann@example.com") in _segments_keys(keyed, tmp_path)
    assert "@example.com" not in out.read_text()
    res = runner.invoke(app, [*args, "--pii", "include"])
    assert res.exit_code == 0 and "pseudonymous" not in res.stderr, res.output
    assert _ids(out) == ["'" + i if i == FORMULA_ID else i for i in ids]


def test_unlink_finds_a_customer_by_its_key(keyed):
    """`customers explain` shows an e-mail id as its key; `customers unlink pid-...` blocked
    the key itself (no customer), now the customer it stands for, as explain resolves it."""
    key = _key_made(keyed, "ann@example.com")
    res = runner.invoke(app, ["customers", "unlink", "-p", str(keyed), key, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"customer_id": key, "links_removed": 0}
    con = duckdb.connect(str(keyed / "segflow.duckdb"), read_only=True)
    assert [r[0] for r in con.execute("SELECT customer_id FROM identity_blocks").fetchall()] == ["ann@example.com"]
    con.close()


def _key_made(directory, customer_id: str) -> str:
    """The key of ``customer_id`` once the project's secret exists (made by a masked output)."""
    runner.invoke(app, ["customers", "explain", "-p", str(directory), customer_id, "--json"])
    return _key(directory, customer_id)
