"""The name rule of personal columns (segflow.exports.pii_kind): which column names hold
personal data, of which kind (the rules that hash and mask them), and that every policy
applies it (protect_columns for a customer file, personal_columns for the store's exports,
the server's protect)."""

from __future__ import annotations

import hashlib

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from segflow.exports import is_personal, personal_columns, pii_kind, protect_columns

#: Written by hand (not from the alias table): name -> kind, None = not personal.
EXPECTED = {
    # e-mail rule
    "email": "email", "Email": "email", "EMAIL": "email", "E-Mail": "email", "e_mail": "email",
    "eMail": "email", "email_address": "email", "EmailAddress": "email", "customer_email": "email",
    "Contact E-Mail": "email", "email2": "email",
    # phone rule
    "phone": "phone", "phone_number": "phone", "PhoneNumber": "phone", "mobile": "phone",
    "mobile_phone": "phone", "telephone": "phone", "tel": "phone", "cell_phone": "phone",
    "home_phone": "phone", "Phone_2": "phone",
    # other personal text
    "name": "text", "surname": "text", "given_name": "text", "FirstName": "text",
    "last-name": "text", "address_line1": "text", "addressLine2": "text",
    "street_address": "text", "post_code": "text", "zip_code": "text", "ZIP": "text",
    "billing_address": "text", "postcode": "text",
    # derived or not personal
    "email_sha256": None, "E-Mail_sha256": None, "phone_sha256": None, "email_domain": None,
    "phone_hash": None, "zip_region": None, "has_email": None, "email_opt_in": None,
    "email_opens": None, "company_name": None, "product_name": None, "customer_id": None,
    "region": None, "channel": None, "cell": None, "mail": None, "customer": None,
    "name_length": None, "n_phones": None,
    # qualifiers after the alias, plurals, a number's suffix, IP addresses (the tester's names)
    "Phone (mobile)": "phone", "Email (work)": "email", "phone_home": "phone", "emails": "email",
    "phones": "phone", "phone_numbers": "phone", "EmailID": "email", "mobile phone no": "phone",
    "contact_no": "phone", "contact_number": "phone", "E_Mail_Adresse": "email",
    "ip_address": "text", "IP": "text", "user_ip": "text", "addresses": "text",
    # still not personal: a CRM record key, a count, derived columns
    "contact_id": None, "email_count": None, "Email (work)_sha256": None, "phones_sha256": None,
}


@pytest.mark.parametrize("column", list(EXPECTED))
def test_name_rule_finds_personal_columns_and_their_kind(column):
    assert pii_kind(column) == EXPECTED[column]
    assert is_personal(column) is (EXPECTED[column] is not None)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: A customer file with personal columns under names only the rule finds, and derived
#: columns it leaves alone.
FILE = pa.table({
    "customer_id": ["c1", "c2"],
    "E-Mail": [" Ann.Lee@Example.COM ", "bob@shop.test"],
    "mobile_phone": ["+44 7700 900123", "0044 7700-900456"],
    "surname": ["Lee", None],
    "zip_code": ["SW1A 1AA", "EC1A 1BB"],
    "email_domain": ["example.com", "shop.test"],
    "phone_hash": ["abc", "def"],
})


def test_protect_columns_hashes_and_masks_by_each_columns_kind():
    t = ibis.memtable(FILE)
    hashed = protect_columns(t, "hash").to_pyarrow().to_pylist()
    assert list(hashed[0]) == ["customer_id", "E-Mail_sha256", "mobile_phone_sha256", "surname_sha256",
                               "zip_code_sha256", "email_domain", "phone_hash"]
    # an e-mail trimmed and lower-cased, a phone in E.164 (not its text lower-cased)
    assert hashed[0]["E-Mail_sha256"] == sha("ann.lee@example.com")
    assert hashed[1]["mobile_phone_sha256"] == sha("+447700900456")
    assert hashed[0]["surname_sha256"] == sha("lee")
    assert hashed[1]["surname_sha256"] is None
    assert hashed[0]["zip_code_sha256"] == sha("sw1a 1aa")
    assert [r["email_domain"] for r in hashed] == ["example.com", "shop.test"]
    assert [r["phone_hash"] for r in hashed] == ["abc", "def"]

    masked = protect_columns(t, "mask").to_pyarrow().to_pylist()
    assert [(r["E-Mail"], r["mobile_phone"], r["surname"], r["zip_code"]) for r in masked] == [
        ("A***@Example.COM", "***23", "L***", "S***"), ("b***@shop.test", "***56", None, "E***")]
    assert list(protect_columns(t, "omit").columns) == ["customer_id", "email_domain", "phone_hash"]


def test_store_exports_take_every_personal_column_of_customers():
    """personal_columns reads the columns the rule finds in the store's customers, not only
    the canonical email and phone."""
    customers = ibis.memtable(pa.table({
        "customer_id": ["c1"], "email": ["A@x.test"], "mobile_phone": ["020 7946 0000"],
        "email_domain": ["x.test"], "region": ["north"]}))
    got = personal_columns(customers, "hash").to_pyarrow().to_pylist()
    assert got == [{"customer_id": "c1", "email_sha256": sha("a@x.test"),
                    "mobile_phone_sha256": sha("02079460000")}]


def test_server_protect_uses_the_same_rule():
    from segflow.server._security import protect

    frame = pd.DataFrame({"customer_id": ["c1"], "E-Mail": ["Ann@Example.com"], "tel": ["+44 20 7946 0012"],
                          "given_name": ["Ann"], "email_domain": ["example.com"]})
    masked = protect(frame, "mask").to_dict(orient="records")
    assert masked == [{"customer_id": "c1", "E-Mail": "A***@Example.com", "tel": "***12",
                       "given_name": "A***", "email_domain": "example.com"}]
    hashed = protect(frame, "hash").to_dict(orient="records")
    assert hashed == [{"customer_id": "c1", "E-Mail_sha256": sha("ann@example.com"),
                       "tel_sha256": sha("+442079460012"), "given_name_sha256": sha("ann"),
                       "email_domain": "example.com"}]


def test_content_check_protects_columns_the_name_rule_misses():
    """``Mail`` and ``Cell`` (ambiguous names, not personal by name) holding addresses and
    numbers are hashed by the e-mail and phone rules, with a warning naming each; a column of
    ids, dates or a minority of addresses is left alone."""
    from segflow.exports._pii_content import PersonalContentWarning

    t = ibis.memtable(pa.table({
        "customer_id": ["c1", "c2", "c3", "c4"],
        "Mail": [" Ann@Example.com", "bob@shop.test", "", None],       # 2 of 2 non-empty
        "Cell": ["+44 7700 900123", "(030) 123-4567", "07700900111", "n/a"],  # 3 of 4
        "ref": ["10002345", "10002346", "10002347", "10002348"],       # bare ids
        "day": ["2024-01-15", "2024-01-16", "2024-01-17", "2024-01-18"],
        "note": ["a@b.com", "call me", "later", "no"],                 # 1 of 4
    }))
    with pytest.warns(PersonalContentWarning) as caught:
        out = protect_columns(t, "hash", source="n.csv").to_pyarrow().to_pylist()
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert messages[0].startswith("n.csv: column 'Cell' is treated as personal (phone)")
    assert "3 of 4 non-empty values (75 %) are phone numbers" in messages[0]
    assert "2 of 2 non-empty values (100 %) are e-mail addresses" in messages[1]
    assert list(out[0]) == ["customer_id", "Mail_sha256", "Cell_sha256", "ref", "day", "note"]
    assert [r["Mail_sha256"] for r in out] == [sha("ann@example.com"), sha("bob@shop.test"), None, None]
    assert [r["Cell_sha256"] for r in out] == [sha("+447700900123"), sha("0301234567"),
                                               sha("07700900111"), None]
    assert [r["note"] for r in out] == ["a@b.com", "call me", "later", "no"]
    with pytest.warns(PersonalContentWarning):
        masked = protect_columns(t, "mask").to_pyarrow().to_pylist()
    assert [r["Cell"] for r in masked] == ["***23", "***67", "***11", "***"]
    # in clear on request, without the check
    assert protect_columns(t, "include").to_pyarrow().to_pylist()[0]["Mail"] == " Ann@Example.com"
