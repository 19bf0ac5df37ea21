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
        "customer_id": ["a", "a", "b", "c"],
        "created_at": [ts("2024-01-01")] * 4,
        "region": ["North", "South", "West", "East"],
        # a moves North -> South on 2024-03-10, after the exposure of 2024-03-01;
        # b has no history; c a record whose validity ended before its exposure, then none
        "valid_from": [ts("2024-01-01"), ts("2024-03-10"), pd.NaT, ts("2024-01-01")],
        "valid_to": [ts("2024-03-10"), pd.NaT, pd.NaT, ts("2024-02-01")],
    }), preserve_index=False))
    memory_store.append("campaign_exposures", pa.Table.from_pandas(pd.DataFrame({
        "campaign_id": "k", "customer_id": ["a", "b", "c"], "ts": [ts("2024-03-01")] * 3,
        "arm": ["treatment", "control", "treatment"], "exposure_type": "send",
    }), preserve_index=False))
    memory_store.append("transactions", pa.Table.from_pandas(pd.DataFrame({
        "transaction_id": ["t1"], "customer_id": ["a"], "ts": [ts("2024-03-02")],
        "amount": [10.0],
    }), preserve_index=False))
    with pytest.warns(UserWarning, match="cut short"):
        r = exposure_responses(memory_store, "k", by=["region"]).to_pandas()
    assert r.set_index("customer_id").region.fillna("-").to_dict() == {
        "a": "North", "b": "West", "c": "-"}
