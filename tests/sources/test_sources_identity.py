"""Identity resolution: links by normalised email/phone and an id map; explain; unlink."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from segflow.errors import InputError
from segflow.sources import explain, identity_map, resolve_identities, unlink
from segflow.store import Store


@pytest.fixture()
def store() -> Store:
    customers = pd.DataFrame({
        "customer_id": ["A1", "B7", "W3", "W4", "X9", "Z1", "Z2", "Z3"],
        "email": ["Ann@Example.com", None, " ann@example.com", "bob@x.org", None, None, None, None],
        "phone": ["+44 20 7946 0001", "020 7946 0002", None, "(020) 7946-0002", None,
                  "12", "12", None],
        "source": ["crm", "crm", "web", "web", "web", "crm", "crm", "crm"],
    })
    s = Store(":memory:")
    s.append("customers", pa.Table.from_pandas(customers, preserve_index=False))
    return s


def test_links_by_email_phone_and_id_map(store):
    report = resolve_identities(store, id_map=pd.DataFrame({"customer_id": ["X9"], "other_id": ["A1"]}))
    links = dict(zip(report.to_pandas().customer_id, report.to_pandas().master_id, strict=True))
    # W3 ~ A1 by email (case, spaces); W4 ~ B7 by phone (last 9 digits); X9 ~ A1 by the map;
    # the short phone '12' is no evidence
    assert links == {"W3": "A1", "X9": "A1", "W4": "B7"}
    assert report.by_rule == {"email": 1, "id_map": 1, "phone": 1}
    ident = identity_map(store).execute().set_index("customer_id").master_id.to_dict()
    assert ident["Z1"] == "Z1" and ident["W4"] == "B7" and len(ident) == 8
    # canonical rows are untouched
    assert store.sql("SELECT count(*) FROM customers").column(0)[0].as_py() == 8


def test_explain_and_unlink_are_reversible(store):
    resolve_identities(store)
    e = explain(store, "W3", pii="include")
    assert e.master_id == "A1" and e.members == ["A1", "W3"]
    assert e.edges.rule.tolist() == ["email"] and "ann@example.com" in e.text()
    assert unlink(store, "W3") == 1
    assert explain(store, "W3").members == ["W3"] and explain(store, "W3").blocked
    resolve_identities(store)  # stays unlinked on later runs
    assert explain(store, "W3").master_id == "W3"
    assert explain(store, "W4").master_id == "B7"
    with pytest.raises(InputError, match="not in the customers table"):
        explain(store, "nobody")


def test_groups_are_connected_components(store):
    # chain: A1 -email- W3 -map- Z3 -map- Z2 : one group with master A1
    report = resolve_identities(store, id_map=pd.DataFrame(
        {"customer_id": ["W3", "Z3"], "other_id": ["Z3", "Z2"]}))
    links = dict(zip(report.to_pandas().customer_id, report.to_pandas().master_id, strict=True))
    assert {k: v for k, v in links.items() if v == "A1"} == {"W3": "A1", "Z3": "A1", "Z2": "A1"}


def test_explain_and_map_before_any_resolve(store):
    e = explain(store, "W3")
    assert e.master_id == "W3" and e.members == ["W3"] and e.edges.empty
    ident = identity_map(store).execute()
    assert (ident.customer_id == ident.master_id).all() and len(ident) == 8
    assert "identity_links" not in store.tables()  # nothing written


def test_explain_masks_personal_values_by_default(store):
    """The records' e-mail and phone and the evidence of each link, masked by the exports'
    rules (first character, ***, the domain; *** and the last two digits) unless asked."""
    resolve_identities(store)
    e = explain(store, "W4")
    assert e.master_id == "B7"
    assert e.edges[["rule", "evidence"]].values.tolist() == [["phone", "***02"]]  # of 079460002
    records = e.records.set_index("customer_id")
    assert records.loc["W4", ["email", "phone"]].tolist() == ["b***@x.org", "***02"]
    assert records.loc["B7", "phone"] == "***02" and pd.isna(records.loc["B7", "email"])
    assert "7946" not in e.text() and "bob@" not in e.text()
    clear = explain(store, "W4", pii="include")
    assert clear.edges.evidence.tolist() == ["079460002"]
    assert clear.records.set_index("customer_id").loc["W4", "phone"] == "(020) 7946-0002"
    with pytest.raises(InputError, match="unknown personal-data policy 'hash'"):
        explain(store, "W4", pii="hash")
