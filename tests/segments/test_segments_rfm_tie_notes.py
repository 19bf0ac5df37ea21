"""The note on a degenerate RFM result (docs/segments.md, "Heavy ties"): a score dimension
with one value among the buyers, or ties that leave scores empty, is said with its numbers,
the empty named segments and what to change; a scheme whose scores are all used gets none."""

from __future__ import annotations

import math

import ibis
import pandas as pd

from segflow.config import SchemeSettings
from segflow.segments import assign, check_scheme
from segflow.segments._checks import rfm_tie_messages
from segflow.segments._rfm import RFM_SEGMENTS

RFM = SchemeSettings(name="rfm", kind="rfm", min_segment_share=0.0)
NAMED = [s.name for s in RFM_SEGMENTS]


def _notes(frame: pd.DataFrame, scheme: SchemeSettings = RFM) -> tuple[list[str], set[str]]:
    features = ibis.memtable(frame)
    assignments = assign(scheme, features)
    used = set(assignments.to_pandas()["segment"])
    return check_scheme(scheme, features, assignments, snapshot="2024-03-01", warn=False), used


def _score(values: pd.Series, bins: int = 5) -> pd.Series:
    """The quantile rule written out: 1 + floor(bins * (buyers strictly worse) / n)."""
    n = len(values)
    return values.map(lambda v: 1 + math.floor(bins * int((values < v).sum()) / n))


def test_one_order_each_cannot_be_split_on_frequency():
    """A young shop: 10 buyers, one order each, different days and spends."""
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                          "recency_days": list(range(3, 53, 5)), "frequency": [1] * 10,
                          "monetary": [20.0 + 7 * i for i in range(10)]})
    notes, used = _notes(frame)
    empty = [name for name in NAMED if name not in used]
    assert len(notes) == 1
    assert notes[0].startswith(
        "scheme 'rfm' at 2024-03-01: RFM scores cannot be split into 5 as asked: frequency has "
        "one value among the 10 buyers (1): F cannot be split into 5 scores, all score 1; "
        f"{len(empty)} of 11 named segments are empty (")
    facts = notes[0].split(". Cause:")[0]
    assert "recency_days" not in facts and "monetary" not in facts  # all 5 scores used
    assert ", ".join(empty[:8]) in notes[0]
    # fewer bins cannot split one value: not offered; what can split it is
    assert "fewer bins" not in notes[0]
    assert notes[0].endswith("To tell buyers apart: no number of bins splits the one value of "
                             "frequency; use a longer [rfm] window_days if one is set (it "
                             "counts orders further back), score_method = 'ntile' (equal-count "
                             "bins; tied buyers split by customer id), or a rules scheme on "
                             "other features (recency_days, monetary, attributes)")
    assert "  " not in notes[0]


def test_a_heavy_tie_is_named_with_its_value_and_share():
    """6 of 10 buyers made one $50 order on the same day; 4 bought more, for more."""
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                          "recency_days": [40] * 6 + [2, 5, 9, 14],
                          "frequency": [1] * 6 + [2, 3, 4, 6],
                          "monetary": [50.0] * 6 + [120.0, 180.0, 260.0, 400.0]})
    notes, used = _notes(frame)
    f = _score(frame["frequency"])
    r = _score(-frame["recency_days"])
    # independent: the scores the rule gives, the empty ones and the tie
    assert sorted(set(f)) == [1, 4, 5] and sorted(set(r)) == [1, 4, 5]
    assert ("r_score uses 3 of 5 scores among the 10 buyers (empty: 2, 3); 6 (60%) share "
            "recency_days = 40 and all score 1") in notes[0]
    assert ("f_score uses 3 of 5 scores among the 10 buyers (empty: 2, 3); 6 (60%) share "
            "frequency = 1 and all score 1") in notes[0]
    assert ("m_score uses 3 of 5 scores among the 10 buyers (empty: 2, 3); 6 (60%) share "
            "monetary = 50 and all score 1") in notes[0]
    empty = [name for name in NAMED if name not in used]
    assert f"; {len(empty)} of 11 named segments are empty (" in notes[0]
    assert "Cause: ties, as a value held by more than 1/bins of the buyers" in notes[0]
    # 3 bins split the 60 % tie: it keeps score 1 and the next value starts at
    # 1 + floor(3 * 0.6) = 2, so no score is empty (4 bins: 1 + floor(2.4) = 3, 2 empty)
    assert sorted(set(_score(frame["frequency"], bins=3))) == [1, 2, 3]
    assert sorted(set(_score(frame["frequency"], bins=4))) == [1, 3, 4]
    assert "To tell buyers apart: fewer bins (bins = 3), a longer [rfm] window_days" in notes[0]


def test_scores_that_use_every_bin_get_no_note():
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                          "recency_days": list(range(1, 11)), "frequency": list(range(1, 11)),
                          "monetary": [10.0 * i + 5 for i in range(10)]})
    notes, _ = _notes(frame)
    assert notes == []
    # four buyers cannot fill five scores: not a degenerate result, no note
    assert _notes(frame.head(4))[0] == []


def test_the_usual_one_order_majority_gets_no_note():
    """55 % one-order buyers leave f_score 2 empty (docs/segments.md) but the segments still
    fill: no note."""
    frame = pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(20)],
                          "recency_days": [3 * i + 1 for i in range(20)],
                          "frequency": [1] * 11 + list(range(2, 11)),
                          "monetary": [13.0 * i + 5 for i in range(20)]})
    notes, used = _notes(frame)
    assert sorted(set(_score(frame["frequency"]))) == [1, 3, 4, 5]  # an empty score
    assert 2 * len([n for n in NAMED if n not in used]) <= len(NAMED)
    assert notes == []


def test_fixed_cut_points_name_their_own_cause():
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                          "recency_days": list(range(1, 11)), "frequency": list(range(1, 11)),
                          "monetary": [10.0 * i + 5 for i in range(10)]})
    frozen = SchemeSettings(name="frozen", kind="rfm", min_segment_share=0.0, cutoffs="fixed",
                            cut_points={"recency_days": [30, 60, 90, 120],
                                        "frequency": [1, 2, 3, 4],
                                        "monetary": [100, 200, 300, 400]})
    notes, _ = _notes(frame, frozen)
    assert len(notes) == 1
    assert "m_score uses 1 of 5 scores among the 10 buyers (empty: 2, 3, 4, 5)" in notes[0]
    assert "r_score uses 1 of 5 scores" in notes[0]  # every buyer within 30 days: 5
    assert "frequency" not in notes[0]  # 1..10 orders against 1, 2, 3, 4: every score used
    assert "Cause: the scheme's fixed cut points do not separate these buyers" in notes[0]
    assert notes[0].endswith("To tell buyers apart: change cut_points, or use "
                             "cutoffs = 'per_snapshot'")


def _tied_majority() -> pd.DataFrame:
    """22 of 40 buyers (55 %) made one $50 order on the same day, long ago; the other 18
    bought 2 to 19 times, more recently, for more."""
    n_tied, n_other = 22, 18
    return pd.DataFrame({
        "customer_id": [f"c{i:02d}" for i in range(n_tied + n_other)],
        "recency_days": [200] * n_tied + [1 + 6 * ((7 * i) % n_other) for i in range(n_other)],
        "frequency": [1] * n_tied + [2 + (5 * i + 3) % n_other for i in range(n_other)],
        "monetary": [50.0] * n_tied + [60.0 + 10 * ((11 * i + 1) % n_other)
                                       for i in range(n_other)]})


def test_a_segment_holding_most_buyers_because_of_a_tie_is_noted():
    """Few named segments empty (4 of 11), but 'Lost' holds 55 % of the buyers: the tied
    ones (the case rfm-ties-identical-customers: 62 of 96 'Lost' at 2024-05-01)."""
    frame = _tied_majority()
    sizes = {"Lost": 22, "Champions": 6, "Loyal": 3, "Potential loyalists": 3, "New": 2,
             "Promising": 2, "At risk": 2}
    empty = [name for name in NAMED if name not in sizes]
    assert len(empty) == 4 and sum(sizes.values()) == len(frame)
    notes = rfm_tie_messages(RFM, ibis.memtable(frame), sizes, snapshot="2024-03-01")
    assert len(notes) == 1
    # independent: 55 % > 1/5 share score 1, and the next value starts at 1 + floor(5 * 0.55)
    assert sorted(set(_score(frame["frequency"]))) == [1, 3, 4, 5]
    assert ("f_score uses 4 of 5 scores among the 40 buyers (empty: 2); 22 (55%) share "
            "frequency = 1 and all score 1") in notes[0]
    assert (f"; 22 of the 40 buyers (55%) are in one segment, 'Lost'; 4 of 11 named segments "
            f"are empty ({', '.join(empty)})") in notes[0]
    # 3 bins: 1 + floor(3 * 0.55) = 2, every score used
    assert sorted(set(_score(frame["frequency"], bins=3))) == [1, 2, 3]
    assert "To tell buyers apart: fewer bins (bins = 3), " in notes[0]
    # the same tie with the segments spread (no majority) is the usual case: no note
    spread = {"Lost": 12, "Hibernating": 10, "Champions": 6, "Loyal": 3,
              "Potential loyalists": 3, "New": 2, "Promising": 2, "At risk": 2}
    assert rfm_tie_messages(RFM, ibis.memtable(frame), spread) == []


def test_a_majority_segment_without_ties_gets_no_note():
    """Every score used (no tie): a large segment alone is not a tie problem."""
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                          "recency_days": list(range(1, 11)), "frequency": list(range(1, 11)),
                          "monetary": [10.0 * i + 5 for i in range(10)]})
    assert rfm_tie_messages(RFM, ibis.memtable(frame), {"Lost": 6, "Champions": 4}) == []
