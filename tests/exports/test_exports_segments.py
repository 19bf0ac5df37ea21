"""`segflow export segments`: the CRM list, personal data, watermarks and changes.

Expected values are the hand-written ones of tests/exports/_store.py, and hashes are
recomputed with hashlib.
"""

from __future__ import annotations

import csv
import hashlib
import json

import pyarrow.parquet as pq
import pytest
from tests.exports._store import (
    CUSTOMERS,
    EXPECTED_S3,
    HISTORY,
    S1,
    S2,
    S3,
    SCORES,
    build,
    changes_by_hand,
)
from typer.testing import CliRunner

from segflow.cli import app
from segflow.errors import SegflowError
from segflow.exports import export_segments, watermark
from segflow.project import Project

runner = CliRunner()


@pytest.fixture()
def project(tmp_path):
    build(tmp_path / "shop")
    with Project.open(tmp_path / "shop") as p:
        yield p


def _sha(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


#: The phones of tests/exports/_store.py as ad platforms match them (E.164 when written with
#: the country code; digits otherwise), by hand.
PHONE_KEYS = {"C1": "+442079460001", "C2": "02079460002", "C4": "0001", "C5": "+15550100",
              "C7": "555"}


def _read_csv(path):
    with open(path, newline="") as f:
        return {r["customer_id"]: r for r in csv.DictReader(f)}


def test_full_csv_holds_the_crm_fields(project, tmp_path):
    out = tmp_path / "crm.csv"
    result = export_segments(project.store, "rfm", out)
    rows = _read_csv(out)
    assert result.rows == len(rows) == len(EXPECTED_S3)
    assert set(rows) == set(EXPECTED_S3)
    for cid, (prev, change_date, periods) in EXPECTED_S3.items():
        r = rows[cid]
        assert r["snapshot_date"] == S3.isoformat()
        assert r["previous_segment"] == (prev or "")
        assert r["last_change_date"] == change_date.isoformat()
        assert int(r["periods_in_segment"]) == periods
        email, phone = CUSTOMERS[cid]
        assert r["email_sha256"] == (_sha(email) if email else "")
        assert r["phone_sha256"] == (_sha(PHONE_KEYS[cid]) if phone else "")
        p_alive, clv = SCORES.get(cid, (None, None))
        assert (float(r["bgnbd_gg__p_alive"]) if r["bgnbd_gg__p_alive"] else None) == p_alive
        assert (float(r["bgnbd_gg__clv"]) if r["bgnbd_gg__clv"] else None) == clv
    # the formula-like segment is neutralised, and no personal value is in the file
    assert rows["C3"]["segment"] == "'" + HISTORY["C3"][2]
    text = out.read_text()
    assert "example.com" not in text.lower() and "HYPERLINK" not in text
    assert watermark(project.store, "rfm") == S3


@pytest.mark.parametrize("pii", ["mask", "omit", "include"])
def test_personal_data_policies(project, tmp_path, pii):
    out = tmp_path / f"crm-{pii}.parquet"
    export_segments(project.store, "rfm", out, pii=pii)
    t = pq.read_table(out).to_pandas().set_index("customer_id")
    if pii == "omit":
        assert not {"email", "phone", "email_sha256", "phone_sha256"} & set(t.columns)
    elif pii == "include":
        assert t.loc["C1", "email"] == CUSTOMERS["C1"][0]
        assert t.loc["C3", "email"] == CUSTOMERS["C3"][0]  # Parquet keeps values as they are
    else:
        assert t.loc["C2", "email"] == "b***@example.org"
        assert t.loc["C1", "email"] == "A***@Example.com"  # " Ann@Example.com ", trimmed
        assert t.loc["C3", "email"] == "***" and t["email"].isna()["C5"]  # no address; none
        assert t.loc["C1", "phone"] == "***01"  # +44 20 7946 0001
        assert t.loc["C7", "phone"] == "***"  # 555: too short to show any digit
        assert "bob" not in " ".join(t["email"].dropna())


def test_changes_since_the_watermark(project, tmp_path):
    store = project.store
    first = export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm")
    at_s2 = {c: segs[1] for c, segs in HISTORY.items() if segs[1] is not None}
    assert first.mode == "changes" and first.since_snapshot is None and first.rows == len(at_s2)
    assert first.changes == {"new": len(at_s2), "changed": 0, "removed": 0}
    assert watermark(store, "crm") == S2
    second = export_segments(store, "rfm", tmp_path / "b.csv", mode="changes", name="crm")
    expected = changes_by_hand(S2, S3)
    rows = _read_csv(tmp_path / "b.csv")
    # the first delta has the columns of every later one (scores: those stored at its
    # snapshot, none at S2), every customer at S2 'new'
    with open(tmp_path / "a.csv", newline="") as fa, open(tmp_path / "b.csv", newline="") as fb:
        head_a, head_b = next(csv.reader(fa)), next(csv.reader(fb))
    assert head_a[:4] == ["customer_id", "scheme", "change", "segment_at_since"]
    assert head_a == [c for c in head_b if "__" not in c]
    assert {c: (r["change"], r["segment_at_since"], r["segment"])
            for c, r in _read_csv(tmp_path / "a.csv").items()} == {
        c: ("new", "", s) for c, s in at_s2.items()}
    assert second.mode == "changes" and second.since_snapshot == S2
    assert set(rows) == set(expected) == {"C3", "C4", "C5", "C6", "C7"}
    for cid, (change, before, after) in expected.items():
        assert rows[cid]["change"] == change
        assert rows[cid]["segment_at_since"] == (before or "")
        shown = rows[cid]["segment"]
        assert shown == ("" if after is None else ("'" + after if after.startswith("=") else after))
    assert second.changes == {"new": 2, "changed": 2, "removed": 1}
    # the same snapshot again: nothing new
    third = export_segments(store, "rfm", tmp_path / "c.csv", mode="changes", name="crm")
    assert third.rows == 0 and third.since_snapshot == S3
    # other export names keep their own watermark
    assert watermark(store, "other") is None
    log = store.sql("SELECT export_name, mode, rows_written FROM export_log ORDER BY exported_at")
    assert log["rows_written"].to_pylist() == [5, 5, 0]


def test_segment_changes_and_crm_list_default_to_the_latest_snapshot(project):
    """The two CRM queries share their snapshot resolution: without ``as_of`` both use the
    latest snapshot (S3), with it the given one; a watermark after ``as_of`` or on no
    snapshot, and a scheme without assignments, are one-line errors."""
    from segflow.exports import crm_segment_list, segment_changes

    store = project.store
    for since, as_of in ((S1, None), (S1, S2), (S2, "2024-03-01")):
        got = segment_changes(store, "rfm", since, as_of, pii="omit").to_pyarrow().to_pylist()
        want = changes_by_hand(since, S2 if as_of == S2 else S3)
        assert {r["customer_id"]: (r["change"], r["segment_at_since"], r["segment"]) for r in got} == want
    at_s3 = {r["customer_id"] for r in crm_segment_list(store, "rfm", scores=False).to_pyarrow().to_pylist()}
    assert at_s3 == {c for c, segs in HISTORY.items() if segs[2] is not None}
    at_s1 = crm_segment_list(store, "rfm", S1, scores=False).to_pyarrow().to_pylist()
    assert {r["customer_id"] for r in at_s1} == {c for c, segs in HISTORY.items() if segs[0] is not None}
    with pytest.raises(SegflowError, match="watermark 2024-03-01 is after the snapshot 2024-02-01"):
        segment_changes(store, "rfm", S3, S2)
    with pytest.raises(SegflowError, match="no snapshot at 2024-01-15"):
        segment_changes(store, "rfm", "2024-01-15")
    with pytest.raises(SegflowError, match="scheme 'nope' has no assignments"):
        crm_segment_list(store, "nope")


def test_watermark_on_a_vanished_snapshot_is_a_clear_error(project, tmp_path):
    export_segments(project.store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S1)
    # the snapshot is no longer computed (segment_assignments is a view over the change rows
    # and the computed snapshots)
    project.store.raw.execute("DELETE FROM segment_snapshots WHERE snapshot_date = ?", [S1])
    # the way out it names is an option the command has (it named a --full, which it lacks)
    with pytest.raises(SegflowError, match="no snapshot at 2024-01-01.*without --changes"):
        export_segments(project.store, "rfm", tmp_path / "b.csv", mode="changes")


def test_cli_json_and_errors(project, tmp_path):
    directory = str(project.directory)
    project.close()
    out = tmp_path / "crm.parquet"
    res = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "rfm", "--to", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["rows"] == len(EXPECTED_S3) and payload["format"] == "parquet"
    assert pq.read_table(out).num_rows == len(EXPECTED_S3)
    bad = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "rfm", "--to", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == 1 and "cannot tell the export format" in bad.output
    assert "Traceback" not in bad.output
    bad = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "nope", "--to", str(out)])
    assert bad.exit_code == 1 and "scheme 'nope' has no assignments" in bad.output
    bad = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "rfm", "--to", str(out), "--pii", "clear"])
    assert bad.exit_code == 2 and "'--pii': 'clear' is not one of hash, mask, omit, include" in bad.output
    from segflow.cli._export import PII_CHOICES
    from segflow.exports import PII_POLICIES

    assert PII_CHOICES == PII_POLICIES  # the command line's list is the library's
    bad = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "rfm", "--to", str(out),
                              "--webhook", "http://127.0.0.1:9/"])
    assert bad.exit_code == 1 and "use them with --changes" in bad.output


def test_phones_hash_in_e164_form_in_exports_and_the_server():
    """Ad platforms match phone numbers in E.164 form (``+`` and digits); the hash of the
    raw text (spaces, brackets, ``00``) matched none of them. The engine's and the server's
    hashes are the same."""
    import ibis
    import pyarrow as pa

    from segflow.exports import personal_columns, phone_key
    from segflow.server._security import hash_value

    written = {"a": "+44 (0)20 7946-0000", "b": "0044 20 7946 0000", "c": " 020 7946 0000 ",
               "d": "+1 (555) 010-0199", "e": None, "f": "\u00a0+44 20 7946 0000 ext. 12",
               "g": "n/a", "h": "00"}
    want = {"a": "+442079460000", "b": "+442079460000", "c": "02079460000",
            "d": "+15550100199", "e": None, "f": "+442079460000", "g": None, "h": None}
    assert {k: phone_key(v) if v else None for k, v in written.items()} == want
    t = ibis.memtable(pa.table({"customer_id": list(written), "phone": list(written.values())}))
    got = personal_columns(t, "hash").to_pyarrow().to_pylist()
    hashes = {r["customer_id"]: r["phone_sha256"] for r in got}
    assert hashes == {k: _sha(v) if v else None for k, v in want.items()}
    assert {k: hash_value(v, "phone") for k, v in written.items()} == hashes
    assert hash_value(" Ann@Example.com ", "email") == _sha("ann@example.com")


def test_hashed_columns_are_named_alike_in_exports_and_the_server():
    """One naming rule (``segflow.exports._pii.hashed_column``): the server's hashed frames
    and rows put the hashes under ``email_sha256`` as the exports do (before, under
    ``email``: a column named for the value holding its hash)."""
    import ibis
    import pandas as pd
    import pyarrow as pa

    from segflow.exports import personal_columns
    from segflow.server._security import protect, protect_rows

    written = {"customer_id": ["a", "b"], "email": [" Ann@Example.com ", None], "phone": ["020 7946 0000", "n/a"],
               "name": ["Ann Lee", "Bo"]}
    exported = personal_columns(ibis.memtable(pa.table(written)), "hash").to_pandas().sort_values("customer_id")
    frame = protect(pd.DataFrame(written), "hash")
    columns, rows = protect_rows(list(written), list(zip(*written.values(), strict=True)), "hash")
    assert list(frame.columns) == columns == ["customer_id", "email_sha256", "phone_sha256", "name_sha256"]
    assert set(exported.columns) == set(columns)
    want = exported[columns].astype(object).where(exported[columns].notna(), None).to_numpy().tolist()
    assert frame.astype(object).where(frame.notna(), None).to_numpy().tolist() == [list(r) for r in rows] == want


def test_personal_data_masks_alike_in_exports_and_the_server():
    """One customer's data was masked two ways: phones (the exports kept the last four
    characters behind a star each, the server ``***`` and two digits, also of ``555``),
    e-mails without ``@`` (exports ``***``, server first letter and ``***``) and empty names
    (exports empty, server ``***``). Now the exports' ``mask`` policy and the server's masked
    frames and rows all call :func:`segflow.exports.mask_value`: one rule per kind of value."""
    import ibis
    import pandas as pd
    import pyarrow as pa

    from segflow.exports import personal_columns
    from segflow.server._security import protect, protect_rows

    written = {
        "phone": {"uk": "+44 20 7946 0123", "zeros": "0044 (0)20 7946-0123 ext. 9", "dashes": "020-7946-0123",
                  "us": "+1 (555) 010-0199", "six": "12 34 56", "short": "555", "words": "n/a",
                  "empty": "", "blank": "\u00a0 ", "none": None},
        "email": {"plain": "jane.doe@example.com", "spaced": " Ann@Example.com ", "no_at": "jane.doe",
                  "no_local": "@example.com", "no_domain": "ann@", "two_at": "a@b@example.com",
                  "unicode": "\u00e9lodie@exemple.fr", "greek": "\u03a3\u03bf\u03c6\u03af\u03b1@example.gr",
                  "empty": "", "blank": "\u00a0", "none": None},
        "name": {"plain": "Jane Doe", "letter": "J", "spaced": "  \u00c9lodie ", "empty": "", "blank": " ",
                 "none": None},
    }
    want = {
        "phone": {"uk": "***23", "zeros": "***23", "dashes": "***23", "us": "***99", "six": "***56",
                  "short": "***", "words": "***", "empty": "", "blank": "", "none": None},
        "email": {"plain": "j***@example.com", "spaced": "A***@Example.com", "no_at": "***", "no_local": "***",
                  "no_domain": "***", "two_at": "a***@example.com", "unicode": "\u00e9***@exemple.fr",
                  "greek": "\u03a3***@example.gr", "empty": "", "blank": "", "none": None},
        "name": {"plain": "J***", "letter": "J***", "spaced": "\u00c9***", "empty": "", "blank": "", "none": None},
    }
    # one table (one query): a row per column and case, the other columns null
    ids = [f"{column}:{case}" for column, values in written.items() for case in values]
    table = {c: [written[c].get(i.partition(":")[2]) if i.startswith(c + ":") else None for i in ids] for c in written}
    t = ibis.memtable(pa.table({"customer_id": ids, **{c: pa.array(v, pa.string()) for c, v in table.items()}}))
    masked = personal_columns(t, "mask").to_pyarrow().to_pylist()
    for column, values in written.items():
        exported = {r["customer_id"].partition(":")[2]: r[column] for r in masked if r["customer_id"].startswith(column + ":")}
        frame = pd.DataFrame({"customer_id": list(values), column: list(values.values())})
        served = {k: None if pd.isna(v) else v  # a missing value comes back as NaN (JSON: null)
                  for k, v in zip(frame["customer_id"], protect(frame, "mask")[column], strict=True)}
        rows = dict(protect_rows(["customer_id", column], list(values.items()), "mask")[1])
        assert exported == served == rows == want[column], column


def _masked_on_every_path(written: dict[str, dict[str, str | None]]) -> list[dict[str, dict[str, str | None]]]:
    """The values of ``written`` (column -> case -> value) masked by the exports' ``mask``
    policy (one query), the server's frames, its rows and :func:`segflow.exports.mask_value`."""
    import ibis
    import pandas as pd
    import pyarrow as pa

    from segflow.exports import mask_value, personal_columns
    from segflow.server._security import protect, protect_rows

    ids = [f"{column}:{case}" for column, values in written.items() for case in values]
    table = {c: [written[c].get(i.partition(":")[2]) if i.startswith(c + ":") else None for i in ids] for c in written}
    t = ibis.memtable(pa.table({"customer_id": ids, **{c: pa.array(v, pa.string()) for c, v in table.items()}}))
    masked = personal_columns(t, "mask").to_pyarrow().to_pylist()
    paths: list[dict[str, dict[str, str | None]]] = [{}, {}, {}, {}]
    for column, values in written.items():
        paths[0][column] = {r["customer_id"].partition(":")[2]: r[column] for r in masked
                            if r["customer_id"].startswith(column + ":")}
        frame = pd.DataFrame({"customer_id": list(values), column: list(values.values())})
        paths[1][column] = {k: None if pd.isna(v) else v
                            for k, v in zip(frame["customer_id"], protect(frame, "mask")[column], strict=True)}
        paths[2][column] = dict(protect_rows(["customer_id", column], list(values.items()), "mask")[1])
        paths[3][column] = {k: mask_value(column, v) for k, v in values.items()}
    return paths


def test_masking_edge_cases_alike_on_every_path():
    """The masking rules are one vectorised implementation (Arrow compute on a whole column,
    :func:`segflow.exports.mask_array`; it replaced a Python function called per value):
    its outputs on the corners of each rule, the same from the exports, the server's frames
    and rows and the one-value function. Unicode white space is what ``str.strip()`` trims
    (a line separator, ``\\x1c``; not a zero-width space), and a phone's own trimming is
    its listed spaces only; a first character is a code point (an emoji, a letter without
    its combining accent); an e-mail is cut at its last ``@``; a phone's extension is cut in
    any case and spelling Python's ``(?i)`` matched (``EXTENSİON``), a trunk ``(0)`` is
    dropped only from an international number, ``00`` counts as ``+``, non-ASCII digits are
    not digits."""
    written = {
        "email": {"quoted": '"a@b"@example.com', "emoji": "\U0001f600x@example.com",
                  "combining": "e\u0301lodie@exemple.fr", "at_first": "@@example.com", "at_last": "a@b@",
                  "separators": "\u2028ann@example.com\x1c", "inner_newline": "an\nn@exam\nple.com",
                  "zero_width": "\u200bann@example.com", "rewrite": "$1@b\\1", "only_at": "@", "tab": "\t"},
        "phone": {"x": "+44 (0)20 7946 0123 x 45", "hash": "020 7946 0123 #7", "dotted_i": "+44 20 7946 0123 EXTENSİON 12",
                  "long_s": "+44 20 7946 0123 extenſion 12", "trunk_intl": "+4 (0)1234", "trunk_national": "4 (0)1234",
                  "zeros6": "00 12 34 56", "zeros5": "00 12 34 5", "zero_zero": "0 0 12 34 5", "plus_plus": "++44 20 7946 0123",
                  "only_ext": "x123", "spaces": "\u3000+44 20 7946 0123\u202f", "line_sep": "\u2028+44 20 7946 0123",
                  "unit_sep": "\x1c", "arabic": "\u0661\u0662\u0663\u0664\u0665\u0666", "newline": "\n020 7946 0123\n"},
        "name": {"emoji": "\U0001f600 smile", "line_sep": "\u2028Ann", "unit_sep": "\x1c", "combining": "e\u0301",
                 "zero_width": "\u200b", "newline": "\nAnn\nLee"},
    }
    want = {
        "email": {"quoted": '"***@example.com', "emoji": "\U0001f600***@example.com", "combining": "e***@exemple.fr",
                  "at_first": "@***@example.com", "at_last": "***", "separators": "a***@example.com",
                  "inner_newline": "a***@exam\nple.com", "zero_width": "\u200b***@example.com",
                  "rewrite": "$***@b\\1", "only_at": "***", "tab": ""},
        "phone": {"x": "***23", "hash": "***23", "dotted_i": "***23", "long_s": "***23", "trunk_intl": "***",
                  "trunk_national": "***34", "zeros6": "***56", "zeros5": "***", "zero_zero": "***45",
                  "plus_plus": "***23", "only_ext": "***", "spaces": "***23", "line_sep": "***23", "unit_sep": "***",
                  "arabic": "***", "newline": "***23"},
        "name": {"emoji": "\U0001f600***", "line_sep": "A***", "unit_sep": "", "combining": "e***",
                 "zero_width": "\u200b***", "newline": "A***"},
    }
    for got in _masked_on_every_path(written):
        assert got == want


def test_server_masks_values_that_are_not_text_as_their_text():
    """The server masks what a frame or row holds: a number as its text, a missing value
    (None, NaN) as it is, each column at once."""
    import math

    from segflow.exports import mask_value
    from segflow.server._security import protect_rows

    rows = [(447946012345, 12345, None), (None, 0, float("nan"))]
    _, masked = protect_rows(["phone", "zip", "email"], rows, "mask")
    assert masked[0] == ("***45", "1***", None)
    assert masked[1][:2] == (None, "0***") and math.isnan(masked[1][2])
    assert mask_value("phone", 447946012345) == "***45" and math.isnan(mask_value("email", float("nan")))


def test_arrow_trims_the_white_space_python_strips():
    """E-mails and names are trimmed as ``str.strip()`` trims them, in Arrow
    (``utf8_trim_whitespace``): the same characters, every code point checked."""
    import sys

    import pyarrow as pa
    import pyarrow.compute as pc

    points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]
    trimmed = pc.utf8_trim_whitespace(pa.array([chr(c) + "a" + chr(c) for c in points])).to_pylist()
    assert [c for c, t in zip(points, trimmed, strict=True) if t == "a"] == [c for c in points if chr(c).isspace()]


def test_phone_extensions_hash_alike_in_any_case():
    """The engine's regular expressions (RE2) fold case unlike Python's ``(?i)``: an
    extension written ``EXTENSİON`` was cut by the server's hash and not by the export's, so
    one number hashed two ways. The letters are spelt out in both cases now."""
    import ibis
    import pyarrow as pa

    from segflow.exports import personal_columns, phone_key
    from segflow.server._security import hash_value

    written = {"dotted": "+44 20 7946 0000 EXTENSİON 12", "long_s": "+44 20 7946 0000 extenſion 12",
               "ext": "+44 20 7946 0000 Ext. 12", "x": "020 7946 0000 X12"}
    assert {k: phone_key(v) for k, v in written.items()} == {
        "dotted": "+442079460000", "long_s": "+442079460000", "ext": "+442079460000", "x": "02079460000"}
    t = ibis.memtable(pa.table({"customer_id": list(written), "phone": list(written.values())}))
    hashes = {r["customer_id"]: r["phone_sha256"] for r in personal_columns(t, "hash").to_pyarrow().to_pylist()}
    assert hashes == {k: hash_value(v, "phone") for k, v in written.items()}


def test_emails_hash_as_python_strips_and_lower_cases_them():
    """The engine's TRIM kept the no-break and other Unicode spaces around a value and its
    LOWER mapped ``İ`` to ``i`` and a final ``Σ`` to ``σ``, so these e-mails hashed unlike
    ``hashlib(value.strip().lower())`` and unlike the server's CSV downloads of the same
    customers (docs/server.md: "the same hashes as segflow export --pii hash")."""
    import ibis
    import pyarrow as pa

    from segflow.exports import personal_columns
    from segflow.server._security import hash_value

    written = {"nbsp": "\u00a0ann@example.com\u00a0", "em": "\u2003ann@example.com",
               "dotted": "\u0130STANBUL@example.com", "sigma": "\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3@example.gr",
               "sigma_dot": "\u039f\u0394\u039f\u03a3.X@example.gr", "ctrl": "\x1fann@example.com\x1c",
               "plain": " Bob@Example.ORG ", "accent": "\u00c9MILE@Exemple.fr", "none": None}
    # by hand: what Python's str.strip().lower() gives
    keys = {"nbsp": "ann@example.com", "em": "ann@example.com",
            "dotted": "i\u0307stanbul@example.com", "sigma": "\u03c3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2@example.gr",
            "sigma_dot": "\u03bf\u03b4\u03bf\u03c3.x@example.gr", "ctrl": "ann@example.com",
            "plain": "bob@example.org", "accent": "\u00e9mile@exemple.fr", "none": None}
    want = {k: hashlib.sha256(v.encode()).hexdigest() if v else None for k, v in keys.items()}
    t = ibis.memtable(pa.table({"customer_id": list(written), "email": pa.array(list(written.values()), pa.string())}))
    got = {r["customer_id"]: r["email_sha256"] for r in personal_columns(t, "hash").to_pyarrow().to_pylist()}
    assert got == want
    assert {k: hash_value(v, "email") for k, v in written.items()} == want


def test_changes_after_a_run_recomputed_the_watermark_snapshot_are_refused(project, tmp_path):
    """A run on other settings rewrote the snapshot last exported: C1 is now 'At risk' at S2
    and S3, while the receiver holds the 'Loyal' of the export. The changes from the new S2
    to S3 left C1 out, so the receiver kept 'Loyal' for good; the export must refuse."""
    import pyarrow as pa

    store = project.store
    first = export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", name="crm", as_of=S2)
    assert first.mode == "changes" and _read_csv(tmp_path / "a.csv")["C1"]["segment"] == "Loyal"

    def rewrite(segment_of_c1: str) -> None:  # as a run does: every row of S2 and S3 again
        rows = [(c, d, segment_of_c1 if c == "C1" else segs[i]) for c, segs in HISTORY.items()
                for i, d in ((1, S2), (2, S3)) if segs[i] is not None]
        store.append("segment_assignments", pa.table({
            "scheme": ["rfm"] * len(rows), "scheme_version": ["1"] * len(rows),
            "snapshot_date": pa.array([r[1] for r in rows], pa.date32()),
            "customer_id": [r[0] for r in rows], "segment": [r[2] for r in rows],
            "segment_rank": pa.array([1] * len(rows), pa.int32()), "run_id": ["r2"] * len(rows)}))

    rewrite("Loyal")  # recomputed, but to the same segments: nothing to refuse
    same = export_segments(store, "rfm", tmp_path / "b.csv", mode="changes", name="crm", as_of=S2)
    assert same.mode == "changes" and same.rows == 0
    rewrite("At risk")
    with pytest.raises(SegflowError, match=r"at 2024-02-01, which the last export of 'crm' sent, "
                                           r"were recomputed.*without --changes"):
        export_segments(store, "rfm", tmp_path / "c.csv", mode="changes", name="crm")
    assert not (tmp_path / "c.csv").exists()
    # the way out it names: one full export under the name, then changes again
    export_segments(store, "rfm", tmp_path / "d.csv", name="crm", as_of=S2)
    assert _read_csv(tmp_path / "d.csv")["C1"]["segment"] == "At risk"
    after = export_segments(store, "rfm", tmp_path / "e.csv", mode="changes", name="crm")
    assert after.mode == "changes" and "C1" not in _read_csv(tmp_path / "e.csv")
    assert set(_read_csv(tmp_path / "e.csv")) == set(changes_by_hand(S2, S3))
    # a digest of another DuckDB version (its hash may differ) is not compared
    store.raw.execute("UPDATE export_log SET assignments_digest = "
                      "'duckdb 0.0.1' || substr(assignments_digest, strpos(assignments_digest, ':'))")
    rewrite("Lost")
    assert export_segments(store, "rfm", tmp_path / "f.csv", mode="changes", name="crm").rows == 0
    # nor one of a log row an older segflow wrote (no digest)
    store.raw.execute("UPDATE export_log SET assignments_digest = NULL")
    rewrite("New")
    assert export_segments(store, "rfm", tmp_path / "g.csv", mode="changes", name="crm").rows == 0


@pytest.mark.parametrize("call", ["export", "list", "changes"])
def test_a_scheme_that_is_not_text_is_one_line(project, tmp_path, call):
    """A number for the scheme reached DuckDB: 'Conversion Error: Could not convert string
    'rfm' to INT32' from inside the change rows' query."""
    from segflow.errors import InputError
    from segflow.exports import crm_segment_list, segment_changes

    calls = {"export": lambda: export_segments(project.store, 1, tmp_path / "a.csv"),
             "list": lambda: crm_segment_list(project.store, 1),
             "changes": lambda: segment_changes(project.store, 1, S2)}
    with pytest.raises(InputError, match="^a scheme is named by text, not int 1$"):
        calls[call]()


def test_the_plain_list_is_ordered_by_customer_so_two_exports_are_one_file(tmp_path):
    """``segflow export --scheme rfm --out list.csv`` (and ``segment_list``) came out in the
    engine's order: four exports of the demo project gave four different files."""
    import random

    import pyarrow as pa

    rng = random.Random(5)
    ids = [f"K{n:05d}" for n in rng.sample(range(100_000), 4000)]
    days = [S1, S2, S3]
    rows = [(c, d, rng.choice(["Loyal", "At risk", "New", "Lost"])) for c in ids for d in days]
    with Project.init(tmp_path / "big") as project:
        project.store.append("segment_assignments", pa.table({
            "scheme": ["rfm"] * len(rows), "scheme_version": ["1"] * len(rows),
            "snapshot_date": pa.array([r[1] for r in rows], pa.date32()),
            "customer_id": [r[0] for r in rows], "segment": [r[2] for r in rows],
            "segment_rank": pa.array([1] * len(rows), pa.int32()), "run_id": ["r"] * len(rows)}))
    outs = []
    for k in range(2):
        out = tmp_path / f"list{k}.csv"
        res = runner.invoke(app, ["export", "-p", str(tmp_path / "big"), "--scheme", "rfm", "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs.append(out.read_bytes())
    with open(tmp_path / "list0.csv", newline="") as f:
        assert [r["customer_id"] for r in csv.DictReader(f)] == sorted(ids)
    assert outs[0] == outs[1]


def test_a_repeated_resend_still_refuses_a_recomputed_since_snapshot(project, tmp_path):
    """--resend compared the snapshot the delta starts from with the export logged just
    before the repeated one; after one --resend that row was the repeated export itself, so
    a run that rewrote the delta's start went unnoticed: the next --resend wrote changes
    counted from segments the receiver never got (C1 'At risk' at S2 instead of 'Loyal')."""
    import pyarrow as pa

    store = project.store
    export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", name="crm", as_of=S2)
    delta = export_segments(store, "rfm", tmp_path / "b.csv", mode="changes", name="crm")
    again = export_segments(store, "rfm", tmp_path / "b2.csv", mode="changes", name="crm", resend=True)
    assert (again.export_id, again.rows) == (delta.export_id, delta.rows)
    rows = [(c, "At risk" if c == "C1" else segs[1]) for c, segs in HISTORY.items() if segs[1] is not None]
    store.append("segment_assignments", pa.table({  # a run rewrote S2: C1 'At risk' there
        "scheme": ["rfm"] * len(rows), "scheme_version": ["1"] * len(rows),
        "snapshot_date": pa.array([S2] * len(rows), pa.date32()),
        "customer_id": [c for c, _ in rows], "segment": [s for _, s in rows],
        "segment_rank": pa.array([1] * len(rows), pa.int32()), "run_id": ["r2"] * len(rows)}))
    with pytest.raises(SegflowError, match=r"that export \w+ of 'crm' sent were recomputed since"):
        export_segments(store, "rfm", tmp_path / "b3.csv", mode="changes", name="crm", resend=True)
    assert not (tmp_path / "b3.csv").exists()
