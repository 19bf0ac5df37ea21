"""Personal columns of a customer file written back out (`campaign audience --customers`,
`campaign uplift --scores-out`): under `--pii`, hashed by default, as `segflow export` writes
them (segflow.exports.protect_columns), one list of personal columns shared with the server."""

from __future__ import annotations

import csv
import hashlib
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()

#: A customer file: personal columns (``Email`` in another case, a postcode: the server's
#: list, now the one list), a note a spreadsheet would run as a formula, a score.
ROWS = [
    {"customer_id": "c1", "Email": "Ann.Lee@Example.COM", "phone": "+44 7700 900123",
     "name": "Ann Lee", "postcode": "SW1A 1AA", "note": '=HYPERLINK("http://x.test","y")',
     "score": "3"},
    {"customer_id": "c2", "Email": "bob@example.org", "phone": "0044 7700-900456",
     "name": "Bob", "postcode": "EC1A 1BB", "note": "-2+3", "score": "5"},
    {"customer_id": "c3", "Email": "", "phone": "", "name": "", "postcode": "", "note": "ok",
     "score": "1"},
]
PERSONAL = ("Email", "phone", "name", "postcode")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _customers(tmp_path, rows=ROWS):
    path = tmp_path / "customers.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _audience(tmp_path, *args, out="aud.csv", rows=ROWS):
    out_path = tmp_path / out
    res = runner.invoke(app, ["campaign", "audience", "--customers", str(_customers(tmp_path, rows)),
                              "--holdout", "0", "--out", str(out_path), "--json", *args])
    assert res.exit_code == 0, res.output
    return out_path, json.loads(res.stdout)


def _read_csv(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_audience_hashes_personal_columns_by_default(tmp_path):
    out, summary = _audience(tmp_path)
    rows = _read_csv(out)
    assert summary["pii"] == "hash"
    assert list(rows[0]) == ["customer_id", "group", "Email_sha256", "phone_sha256",
                             "name_sha256", "postcode_sha256", "note", "score"]
    by_id = {r["customer_id"]: r for r in rows}
    # computed here: trimmed and lower-cased; a phone in E.164 (+, country code, digits)
    assert by_id["c1"]["Email_sha256"] == sha("ann.lee@example.com")
    assert by_id["c2"]["Email_sha256"] == sha("bob@example.org")
    assert by_id["c1"]["phone_sha256"] == sha("+447700900123")
    assert by_id["c2"]["phone_sha256"] == sha("+447700900456")
    assert by_id["c1"]["name_sha256"] == sha("ann lee")
    assert by_id["c1"]["postcode_sha256"] == sha("sw1a 1aa")
    assert by_id["c3"]["phone_sha256"] == ""  # missing stays missing
    # nothing personal in clear anywhere in the file
    text = out.read_text(encoding="utf-8")
    for row in ROWS:
        for c in PERSONAL:
            assert not row[c] or row[c] not in text, (c, row[c])
    # formulas in the other text columns are still neutralised
    assert by_id["c1"]["note"] == "'" + ROWS[0]["note"]
    assert by_id["c2"]["note"] == "'-2+3"


def test_audience_masks_omits_and_includes_on_request(tmp_path):
    out, summary = _audience(tmp_path, "--pii", "mask")
    by_id = {r["customer_id"]: r for r in _read_csv(out)}
    assert summary["pii"] == "mask"
    assert {c: by_id["c1"][c] for c in PERSONAL} == {
        "Email": "A***@Example.COM", "phone": "***23", "name": "A***", "postcode": "S***"}
    assert {c: by_id["c2"][c] for c in PERSONAL} == {
        "Email": "b***@example.org", "phone": "***56", "name": "B***", "postcode": "E***"}
    assert by_id["c1"]["note"] == "'" + ROWS[0]["note"]

    out, _ = _audience(tmp_path, "--pii", "omit", out="omit.csv")
    rows = _read_csv(out)
    assert list(rows[0]) == ["customer_id", "group", "note", "score"]

    out, summary = _audience(tmp_path, "--pii", "include", out="clear.csv")
    by_id = {r["customer_id"]: r for r in _read_csv(out)}
    assert summary["pii"] == "include"
    for row in ROWS:  # in clear (a phone number is number-like text: no formula guard)
        assert {c: by_id[row["customer_id"]][c] for c in PERSONAL} == {c: row[c] for c in PERSONAL}
    assert by_id["c1"]["phone"] == "+44 7700 900123"


def test_audience_rules_see_clear_values_and_parquet_holds_hashes(tmp_path):
    """--where filters on the values in clear; an integer phone number with a missing value
    (a float in pandas) is hashed as its digits; Parquet keeps the note as it is (the formula
    guard is for CSV only)."""
    rows = [{"customer_id": "c1", "email": "ann@example.com", "phone": "447700900123", "note": "=1+1"},
            {"customer_id": "c2", "email": "bob@shop.test", "phone": "", "note": "ok"}]
    out, summary = _audience(tmp_path, "--where", "email LIKE '%@example.com'",
                             out="aud.parquet", rows=rows)
    data = pq.read_table(out).to_pylist()
    assert summary["size"] == 1
    assert data == [{"customer_id": "c1", "group": "target", "email_sha256": sha("ann@example.com"),
                     "phone_sha256": sha("447700900123"), "note": "=1+1"}]


def test_audience_refuses_to_write_hashes_over_a_column(tmp_path):
    """One line naming the file, its header and the column (in the case the file has it)."""
    rows = [{"customer_id": "c1", "email": "ann@example.com", "Email_SHA256": "x"}]
    path = _customers(tmp_path, rows)
    res = runner.invoke(app, ["campaign", "audience", "--customers", str(path),
                              "--out", str(tmp_path / "a.csv")])
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"error: file {path}, header, column 'Email_SHA256': the file has both 'email' and "
        "'Email_SHA256': the hashes of 'email' would be written over that column; rename or "
        "drop one")
    assert not (tmp_path / "a.csv").exists()


def test_audience_value_column_of_text_names_the_file_rows_and_column():
    """`campaign audience --value clv` over a text column was a pandas traceback ("could not
    convert string to float"); now one line naming the file, the first data rows whose cell
    is no number (1: line 2) and the column. Text of numbers is summed as numbers."""
    from segflow.campaigns import build_audience
    from segflow.errors import InputError

    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(1, 7)],
                          "clv": ["10", "n/a", " 5", "?", None, "12 EUR"]})
    with pytest.raises(InputError) as info:
        build_audience(frame, value="clv", holdout=0.0, source="c.csv")
    assert str(info.value) == (
        "file c.csv, rows 2, 4 and 6, column 'clv': the value column 'clv' holds text, not "
        "numbers ('n/a' on row 2); empty those cells or choose another value column")
    ok = build_audience(frame.iloc[[0, 2, 4]], value="clv", holdout=0.0)
    assert ok.summary()["expected_value_total"] == 15.0


def test_audience_store_path_takes_the_policy(campaign_project, tmp_path):
    """The store's customer view holds segments and scores, no personal columns: the same
    file under any policy, and the policy is reported."""
    out = tmp_path / "a.csv"
    res = runner.invoke(app, ["campaign", "audience", "--project", str(campaign_project),
                              "--segment", "value=low", "--pii", "mask", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pii"] == "mask"
    assert list(_read_csv(out)[0])[:3] == ["customer_id", "group", "value"]


def test_uplift_scores_out_hashes_personal_columns(tmp_path):
    n = 200
    frame = pd.DataFrame({
        "customer_id": [f"c{i:03d}" for i in range(n)],
        "email": [f"User{i}@Example.com" for i in range(n)],
        "arm": ["T" if i % 2 else "C" for i in range(n)],
        "x": [(i % 10) / 10 for i in range(n)],
        "y": [int((i % 2) and (i % 10) >= 5 or i % 7 == 0) for i in range(n)],
    })
    src = tmp_path / "exp.csv"
    frame.to_csv(src, index=False)
    scored = tmp_path / "scored.csv"
    res = runner.invoke(app, ["campaign", "uplift", "--responses", str(src), "--control", "C",
                              "--outcome", "y", "--feature", "x", "--scores-out", str(scored),
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pii"] == "hash"
    rows = _read_csv(scored)
    assert list(rows[0]) == ["customer_id", "email_sha256", "arm", "x", "y", "uplift"]
    for r in rows:  # each row's hash is its own customer's e-mail
        i = int(r["customer_id"][1:])
        assert r["email_sha256"] == sha(f"user{i}@example.com")
    assert "Example.com" not in scored.read_text(encoding="utf-8")
    res = runner.invoke(app, ["campaign", "uplift", "--responses", str(src), "--control", "C",
                              "--outcome", "y", "--feature", "x", "--scores-out", str(scored),
                              "--pii", "include", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["email"] for r in _read_csv(scored)] == frame.email.tolist()
    # a personal column as a feature: one category per person, refused before any fit
    res = runner.invoke(app, ["campaign", "uplift", "--responses", str(src), "--control", "C",
                              "--outcome", "y", "--feature", "x", "--feature", "email"])
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot use 'email' as a feature" in lines[0], res.output
    assert "personal data" in lines[0] and "Example.com" not in res.output
    res = runner.invoke(app, ["campaign", "uplift", "--responses", str(src), "--control", "C",
                              "--outcome", "y", "--feature", "x", "--feature", "customer_id"])
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot use 'customer_id' as a feature: it identifies customers" in lines[0]


@pytest.mark.parametrize("how", ["hash", "mask"])
def test_the_server_protects_the_same_columns_alike(tmp_path, how):
    """One list of personal columns and one rule per kind: the server's CSV downloads and
    masked answers give what the audience file holds."""
    from segflow.exports import PII_COLUMNS
    from segflow.server._security import protect

    assert {"full_name", "street", "postcode", "zip", "email", "address"} <= set(PII_COLUMNS)
    out, _ = _audience(tmp_path, "--pii", how)
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    served = protect(pd.DataFrame(ROWS).replace("", None), how).fillna("")
    cols = [c for c in written.columns if c not in ("group", "note")]
    assert written[cols].to_dict("records") == served[cols].to_dict("records")


def test_build_audience_hashes_by_default_in_the_library():
    """The library's default is the command's: no personal column in clear unless asked."""
    from segflow.campaigns import build_audience
    from segflow.errors import InputError

    frame = pd.DataFrame({"customer_id": ["c1", "c2"], "ZIP": [" 10115", "75001 "],
                          "clv": [10.0, 20.0]})
    aud = build_audience(frame, holdout=0, where="clv > 15")
    assert aud.members.to_dict("records") == [
        {"customer_id": "c2", "group": "target", "ZIP_sha256": sha("75001"), "clv": 20.0}]
    assert aud.summary()["pii"] == "hash"
    clear = build_audience(frame, holdout=0, pii="include").members
    assert clear.ZIP.tolist() == [" 10115", "75001 "]
    with pytest.raises(InputError, match="personal data"):
        build_audience(frame, value="ZIP")
    with pytest.raises(InputError, match="unknown personal-data policy"):
        build_audience(frame, pii="clear")


def test_an_unknown_policy_is_a_usage_error(tmp_path):
    res = runner.invoke(app, ["campaign", "audience", "--customers", str(_customers(tmp_path)),
                              "--out", str(tmp_path / "a.csv"), "--pii", "clear"])
    assert res.exit_code == 2
    assert "'--pii': 'clear' is not one of hash, mask, omit, include" in res.output
    assert not (tmp_path / "a.csv").exists()


def test_blank_personal_values_have_no_hash(tmp_path):
    """A blank e-mail, name or postcode (a Parquet file keeps '' and '  ' where a CSV reader
    reads a missing value) is missing, not the SHA-256 of an empty text: that hash would give
    every customer without the value one shared identity on an ad platform."""
    frame = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "email": ["A@x.test", "", "  "],
                          "name": ["Ann", " ", ""], "postcode": ["", "EC1A 1BB", "\u00a0"]})
    path = tmp_path / "blank.parquet"
    frame.to_parquet(path, index=False)
    out = tmp_path / "aud.parquet"
    res = runner.invoke(app, ["campaign", "audience", "--customers", str(path), "--holdout", "0",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = pq.read_table(out).to_pandas().set_index("customer_id")
    assert got.loc["c1", "email_sha256"] == sha("a@x.test")
    assert got.loc["c2", "postcode_sha256"] == sha("ec1a 1bb")
    assert got[["email_sha256", "name_sha256", "postcode_sha256"]].isna().sum().tolist() == [2, 2, 2]
    assert sha("") not in set(got.astype(str).to_numpy().ravel())


def test_audience_writes_values_as_they_came(tmp_path):
    """Whole numbers with a missing value stayed whole only while the policy hashed them: in
    clear (and any non-personal column) pandas made them floats (4.47946000001e+11), and a
    date a timestamp (2024-01-01 00:00:00)."""
    rows = [{"customer_id": "c1", "phone": "447946000001", "loyalty_no": "90000000001",
             "joined": "2024-01-01"},
            {"customer_id": "c2", "phone": "", "loyalty_no": "", "joined": ""}]
    out, _ = _audience(tmp_path, "--pii", "include", rows=rows)
    got = _read_csv(out)
    assert [(r["phone"], r["loyalty_no"], r["joined"]) for r in got] == [
        ("447946000001", "90000000001", "2024-01-01"), ("", "", "")]


def _one_line_error(res, column, why="holds personal data"):
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot break the effect down by {column!r}: it {why}" in lines[0], res.output
    assert "Traceback" not in res.output
    return lines[0]


def test_effect_refuses_a_breakdown_by_a_personal_column(tmp_path):
    """--by on a personal column (one group per person, labels in clear) is a one-line error
    naming it, in file mode; a derived column (email_domain) is a breakdown as any other."""
    rows = [{"customer_id": f"c{i}", "arm": "A" if i % 2 else "B", "E-Mail": f"p{i}@{'x' if i % 3 else 'y'}.test",
             "email_domain": "x.test" if i % 3 else "y.test", "buy": i % 5 == 0} for i in range(60)]
    path = tmp_path / "resp.csv"
    pd.DataFrame(rows).astype({"buy": int}).to_csv(path, index=False)
    args = ["campaign", "effect", "--responses", str(path), "--control", "A", "--outcome", "buy"]
    res = runner.invoke(app, [*args, "--by", "E-Mail"])
    _one_line_error(res, "E-Mail")
    assert "@" not in res.output.replace("E-Mail", "")
    res = runner.invoke(app, [*args, "--by", "customer_id"])  # one group per person too
    _one_line_error(res, "customer_id", "identifies customers")
    res = runner.invoke(app, [*args, "--by", "email_domain", "--json"])
    assert res.exit_code == 0, res.output
    data = pd.DataFrame(json.loads(res.stdout)["data"])
    assert set(data[data.by == "email_domain"].segment) == {"x.test", "y.test"}


def test_effect_refuses_a_personal_breakdown_in_store_mode(campaign_project):
    """Store mode refuses before reading anything (the store has no such column: the
    refusal, not 'not a scheme or a customers column', is the answer)."""
    res = runner.invoke(app, ["campaign", "effect", "--project", str(campaign_project),
                              "--campaign", "c1", "--by", "phone_number"])
    line = _one_line_error(res, "phone_number")
    assert "campaign c1, column 'phone_number'" in line and "file campaign" not in line  # no file
    res = runner.invoke(app, ["campaign", "effect", "--project", str(campaign_project),
                              "--campaign", "c1", "--by", "customer_id"])
    _one_line_error(res, "customer_id", "identifies customers")


def test_store_breakdown_lists_only_attribute_columns(campaign_project):
    """An unknown --by in store mode lists the attribute columns of customers a breakdown may
    name: not customer_id, the personal email and phone, the lineage or validity columns."""
    from segflow.campaigns._store import breakdown_columns

    res = runner.invoke(app, ["campaign", "effect", "--project", str(campaign_project),
                              "--campaign", "c1", "--by", "nosuch"])
    assert res.exit_code == 1, res.output
    listed = res.output.split("an attribute column of customers (")[1].split(")")[0].split(", ")
    assert "region" in listed
    for hidden in ("customer_id", "email", "phone", "source", "source_file", "source_row", "load_id",
                   "valid_from", "valid_to"):
        assert hidden not in listed, hidden
    assert breakdown_columns(["customer_id", "email", "region", "source_file", "load_id", "city",
                              "valid_to", "Phone (mobile)"]) == ["region", "city"]


def test_audience_protects_the_testers_common_names(tmp_path):
    """The tester's file (issue pii4): every column is written hashed under the default
    policy, by the name rule (Phone (mobile), EmailID, Email (work), mobile phone no,
    contact_no, emails) or, for Mail, by the content check with a warning naming it; no
    value is left in clear."""
    row = {"customer_id": "A", "Phone (mobile)": "+44 7700 900123", "EmailID": "a@b.com",
           "Mail": "a@b.com", "Email (work)": "w@b.com", "mobile phone no": "07700900333",
           "contact_no": "07700900111", "emails": "x@y.com"}
    out = tmp_path / "n_out.csv"
    res = runner.invoke(app, ["campaign", "audience", "--customers", str(_customers(tmp_path, [row])),
                              "--holdout", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    warned = [line for line in res.stderr.splitlines() if "treated as personal" in line]
    assert len(warned) == 1 and "column 'Mail' is treated as personal (email)" in warned[0], res.stderr
    (written,) = _read_csv(out)
    expected = {"customer_id": "A", "group": "target",
                "Phone (mobile)_sha256": sha("+447700900123"), "EmailID_sha256": sha("a@b.com"),
                "Mail_sha256": sha("a@b.com"), "Email (work)_sha256": sha("w@b.com"),
                "mobile phone no_sha256": sha("07700900333"), "contact_no_sha256": sha("07700900111"),
                "emails_sha256": sha("x@y.com")}
    assert written == expected
