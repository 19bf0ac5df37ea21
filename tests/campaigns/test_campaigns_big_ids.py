"""Customer ids beyond 64 bits given as Python ints (a notebook's frame): ``campaign_effect``
and ``build_audience`` raised Python's ``OverflowError`` from inside Arrow/DuckDB (session
59). They now read such ids as text, as the store does, and give the same result as the
same ids given as text; an amount of Python ints beyond 64 bits is read as a float."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segflow.campaigns import build_audience, campaign_effect


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"customer_id": [2**64 + i for i in range(n)],
                         "arm": np.where(np.arange(n) % 2, "treatment", "control"),
                         "purchased": rng.integers(0, 2, n),
                         "revenue": [10**20 + int(v) for v in rng.integers(0, 100, n)]})


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(customer_id=[str(i) for i in frame.customer_id], revenue=frame.revenue.astype(float))


def test_campaign_effect_reads_big_int_ids_as_text() -> None:
    frame = _frame()
    assert frame.customer_id.dtype == object and frame.revenue.dtype == object
    kw = {"arm_col": "arm", "control": "control", "outcomes": ["purchased", "revenue"], "id_col": "customer_id"}
    want = campaign_effect(_as_text(frame), **kw).to_pandas()
    pd.testing.assert_frame_equal(campaign_effect(frame, **kw).to_pandas(), want)
    treated = frame.purchased[frame.arm == "treatment"].mean() - frame.purchased[frame.arm == "control"].mean()
    row = want[(want.outcome == "purchased") & (want.arm == "treatment") & (want.by == "(all)")].iloc[0]
    assert row.lift_abs == treated  # checked by hand: the difference of the two purchase rates


def test_build_audience_reads_big_int_ids_as_text() -> None:
    frame = _frame(10).assign(rfm="A")
    got = build_audience(frame, segments={"rfm": ["A"]}, value="revenue", holdout=0.2).to_pandas()
    want = build_audience(_as_text(frame), segments={"rfm": ["A"]}, value="revenue", holdout=0.2).to_pandas()
    pd.testing.assert_frame_equal(got, want)
    assert got.customer_id.tolist() == [str(2**64 + i) for i in range(10)]


def test_ids_no_one_64_bit_type_holds_and_ids_mixing_ints_and_text_are_read_as_text() -> None:
    """Ids each within 64 bits but not within one type (``-1`` beside ``2**63 + 1``: int64
    holds one, uint64 the other) raised Python's OverflowError from Arrow, and a column of
    ids written ``"C1"`` beside ``123`` Arrow's type error; both are read as text, with the
    result of the same ids given as text."""
    kw = {"arm_col": "arm", "control": "control", "outcomes": ["purchased"], "id_col": "customer_id"}
    for ids in ([-1 - i if i % 2 else 2**63 + i for i in range(200)],
                [f"C{i}" if i % 3 else i for i in range(200)]):
        frame = _frame().assign(customer_id=pd.Series(ids, dtype=object)).drop(columns="revenue")
        want = campaign_effect(frame.assign(customer_id=[str(i) for i in ids]), **kw).to_pandas()
        pd.testing.assert_frame_equal(campaign_effect(frame, **kw).to_pandas(), want)
        assert want.loc[want.by == "(all)", "n"].sum() == 200
