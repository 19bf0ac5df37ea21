"""Migration lift calls moves into lapsed segments (inactive, Lost) 'lapsed', by name."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from segflow.campaigns._migration import LAPSED_SEGMENTS, MigrationLift, _movement, _shares


def _counts() -> pd.DataFrame:
    rows = [
        # arm, from, to, from_rank, to_rank, customers
        ("treatment", "Champions", "Lost", 1, 11, 5),
        ("treatment", "Champions", "Champions", 1, 1, 20),
        ("treatment", "Lost", "Lost", 11, 11, 7),
        ("treatment", "loyalists / top 10%", "inactive / no spend", 1, 40, 3),
        ("treatment", "inactive", "loyalists", 7, 1, 2),
        ("control", "Champions", "Lost", 1, 11, 9),
        ("control", "Champions", "Hibernating", 1, 10, 4),
        ("control", "Champions", "(gone)", 1, np.nan, 1),
        ("control", "(new)", "Champions", np.nan, 1, 6),
    ]
    return pd.DataFrame(rows, columns=["arm", "from_segment", "to_segment", "from_rank",
                                       "to_rank", "customers"])


def test_moves_into_inactive_or_lost_are_lapsed():
    c = _counts()
    assert LAPSED_SEGMENTS == ("inactive", "Lost")
    got = list(_movement(c, "lower"))
    assert got == ["lapsed", "same", "same", "lapsed", "up", "lapsed", "down", "lapsed",
                   "entered"]
    c["movement"] = got
    lift = MigrationLift(c, _shares(c, "control", 0.95), campaign_id="x", scheme="rfm",
                         control="control", before=dt.date(2024, 1, 1),
                         after=dt.date(2024, 2, 1), level=0.95,
                         lapsed_segments=list(LAPSED_SEGMENTS))
    into = lift.lapsed_into.set_index(["arm", "to_segment"])
    assert into.loc[("treatment", "Lost"), "customers"] == 5
    assert into.loc[("treatment", "inactive / no spend"), "customers"] == 3
    assert into.loc[("control", "Lost"), "customers"] == 9
    assert into.loc[("treatment", "Lost"), "share"] == 5 / 37
    assert into["n"].dtype == "int64" and into.loc[("treatment", "Lost"), "n"] == 37  # a count (was 37.0)
    shares = lift.shares.set_index(["arm", "movement"])
    assert shares.loc[("treatment", "lapsed"), "customers"] == 8
    assert shares.loc[("control", "lapsed"), "customers"] == 10
    assert lift.to_dict()["lapsed_segments"] == ["inactive", "Lost"]
