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
