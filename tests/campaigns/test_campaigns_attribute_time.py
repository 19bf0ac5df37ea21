"""A campaign broken down by a customer attribute reads the attribute before the exposure,
not a version of the record that starts after it (time leakage)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from segflow.campaigns import exposure_responses


def test_a_move_after_the_exposure_is_not_the_pre_campaign_region(memory_store):
    ts = pd.Timestamp
    memory_store.append("customers", pa.Table.from_pandas(pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "d", "e", "e", "f", "g"],
        "created_at": [ts("2024-01-01")] * 4 + [ts("2024-03-05"), ts("2024-01-01"),
                                                ts("2024-03-20"), ts("2024-03-01"), ts("2024-03-05")],
        "region": ["North", "South", "West", "East", "Far", "Old", "New", "Tie", "Guest"],
        # a moves North -> South on 2024-03-10, after the exposure of 2024-03-01;
        # b has no history; c a record whose validity ended before its exposure, then none;
        # d registered after its exposure (no record before it); e's move to New is dated
        # before the exposure but was recorded after it (back-dated: known from created_at);
        # f's record was made at the instant of its exposure (a record made at a snapshot
        # belongs to the next one: not known then); g bought as a guest on 2023-06-01 and
        # registered after its exposure
        "valid_from": [ts("2024-01-01"), ts("2024-03-10"), pd.NaT, ts("2024-01-01"), pd.NaT,
                       ts("2024-01-01"), ts("2024-02-15"), pd.NaT, pd.NaT],
        "valid_to": [ts("2024-03-10"), pd.NaT, pd.NaT, ts("2024-02-01"), pd.NaT,
                     pd.NaT, pd.NaT, pd.NaT, pd.NaT],
    }), preserve_index=False))
    memory_store.append("campaign_exposures", pa.Table.from_pandas(pd.DataFrame({
        "campaign_id": "k", "customer_id": ["a", "b", "c", "d", "e", "f", "g"],
        "ts": [ts("2024-03-01")] * 7,
        "arm": ["treatment", "control", "treatment", "control", "treatment", "control", "treatment"],
        "exposure_type": "send",
    }), preserve_index=False))
    memory_store.append("transactions", pa.Table.from_pandas(pd.DataFrame({
        "transaction_id": ["t1", "t2"], "customer_id": ["a", "g"],
        "ts": [ts("2024-03-02"), ts("2023-06-01")], "amount": [10.0, 5.0],
    }), preserve_index=False))
    with pytest.warns(UserWarning, match="cut short"):
        r = exposure_responses(memory_store, "k", by=["region", "tenure"]).to_pandas()
    # d is no customer yet at its exposure: so say the region and the tenure alike (they
    # said "(missing)" and "new (< 90 days)", a negative tenure); c was one, its region unknown;
    # g was one from its purchase of 2023-06-01 (274 days before; first seen, as the features'
    # tenure_days: session 59 said "(not yet a customer)" in the tenure), with no record yet
    assert r.set_index("customer_id").region.fillna("-").to_dict() == {
        "a": "North", "b": "West", "c": "-", "d": "(not yet a customer)", "e": "Old",
        "f": "(not yet a customer)", "g": "-"}
    assert r.set_index("customer_id").tenure.to_dict() == {
        "a": "new (< 90 days)", "b": "new (< 90 days)", "c": "new (< 90 days)",
        "d": "(not yet a customer)", "e": "new (< 90 days)", "f": "(not yet a customer)",
        "g": "90-365 days"}
