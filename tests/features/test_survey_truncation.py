"""A survey question's kind (number or answer) does not depend on answers after a snapshot:
the features and segments at ``s`` are the same on the survey cut at ``s`` and on the whole
survey, when later answers to a numeric question are text (docs/features.md, "Survey")."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from segflow.config import RuleSettings, SchemeSettings
from segflow.features import REQUIRED_TABLES, customer_features, snapshot_features
from segflow.segments import assign
from segflow.store import Store

ANSWERS = [  # (customer, ts, question, answer)
    ("a", "2024-01-10 09:00", "NPS", "7"),
    ("b", "2024-01-10 17:30", "nps", " 9"),      # the same question, other spelling
    ("c", "2024-01-10 12:00", "NPS", "n/a"),     # first day: 2 of 3 numbers -> numeric
    ("c", "2024-02-20 08:00", "NPS", "10"),
    ("b", "2024-03-05 10:00", "NPS", "not sure"),  # text after 2024-03-01: read as missing
    ("a", "2024-04-02 10:00", "NPS", "don't know"),
    ("a", "2024-01-15 10:00", "Mood", "5"),      # first day: 1 of 2 numbers -> an answer
    ("b", "2024-01-15 11:00", "Mood", "happy"),
    ("c", "2024-02-01 10:00", "Mood", "7"),
    ("a", "2024-03-10 10:00", "Channel", "3"),   # first answered after 2024-03-01
    ("b", "2024-03-11 10:00", "Channel", "email"),
]
SNAPSHOTS = (dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2024, 4, 1))
PROMOTERS = SchemeSettings(name="nps", kind="rules", default="other", rules=[
    RuleSettings(segment="promoter", when="nps >= 9"),
    RuleSettings(segment="passive", when="nps >= 7"),
    RuleSettings(segment="cheerful", when="mood = 'happy'"),
])


def _tables(until: dt.date | None) -> dict:
    """The survey (answers before ``until``; all of them when None) with three customers."""
    frame = pd.DataFrame(ANSWERS, columns=["customer_id", "ts", "question", "answer"])
    frame["ts"] = pd.to_datetime(frame["ts"])
    if until is not None:
        frame = frame[frame["ts"] < pd.Timestamp(until)]
    store = Store(":memory:")
    store.append("survey_responses", pa.Table.from_pandas(frame, preserve_index=False))
    store.raw.execute("INSERT INTO customers (customer_id, created_at) VALUES "
                      "('a', '2023-01-01'), ('b', '2023-01-01'), ('c', '2023-01-01')")
    return {n: store.table(n) for n in REQUIRED_TABLES}


def _at(tables: dict, s: dt.date) -> tuple[pd.DataFrame, pd.Series]:
    features = customer_features(tables, s, groups=["survey"]).cache()  # id + survey columns
    segments = assign(PROMOTERS, features).to_pandas().set_index("customer_id")["segment"]
    return features.to_pandas().set_index("customer_id").sort_index(), segments.sort_index()


@pytest.mark.filterwarnings("ignore:survey question")
@pytest.mark.parametrize("s", SNAPSHOTS)
def test_survey_features_at_s_do_not_depend_on_later_answers(s):
    full, full_segments = _at(_tables(None), s)
    cut, cut_segments = _at(_tables(s), s)
    # a question first answered on or after s is a column of the whole table only: missing
    later = [c for c in full.columns if c not in cut.columns]
    assert set(later) <= {"channel", "mood"} and full[later].isna().all().all()
    pd.testing.assert_frame_equal(full[list(cut.columns)], cut)
    pd.testing.assert_series_equal(full_segments, cut_segments)


def test_a_question_s_kind_is_read_from_its_first_day():
    with pytest.warns(UserWarning, match=r"'NPS' is read as a number \(the answers of its first "
                      r"day, 2024-01-10: 2 of 3 numbers\); 3 of its 6 answers are not numbers"):
        full, segments = _at(_tables(None), dt.date(2024, 4, 1))
    # independent: the latest answer before s, a number or missing (text read as missing)
    assert full["nps"].to_dict() == pytest.approx({"a": 7.0, "b": float("nan"), "c": 10.0},
                                                  nan_ok=True)
    assert full["mood"].to_dict() == {"a": "5", "b": "happy", "c": "7"}  # 1 of 2: an answer
    # first answered on 2024-03-10, one number that day: a number; "email" is missing
    assert full["channel"].to_dict() == pytest.approx({"a": 3.0, "b": float("nan"),
                                                       "c": float("nan")}, nan_ok=True)
    assert segments.to_dict() == {"a": "passive", "b": "cheerful", "c": "promoter"}
    # at 2024-03-01 b's latest answer is still 9
    assert _at(_tables(None), dt.date(2024, 3, 1))[1]["b"] == "promoter"


@pytest.mark.filterwarnings("ignore:survey question")
def test_snapshot_features_keep_the_first_day_kinds():
    """The one-pass long table of every snapshot: the same kinds, each value the latest
    answer before its snapshot (text answers to a numeric question missing)."""
    long = snapshot_features(_tables(None), SNAPSHOTS, groups=["survey"]).to_pandas()
    long = long.set_index(["customer_id", "snapshot_date"]).sort_index()
    nan = float("nan")
    expected = {"a": [7.0, 7.0, 7.0], "b": [9.0, 9.0, nan], "c": [nan, 10.0, 10.0]}
    for who, values in expected.items():
        assert long.loc[who, "nps"].tolist() == pytest.approx(values, nan_ok=True)
    # c answered at 2024-02-01 00:00: not before that snapshot
    assert long.loc["c", "mood"].fillna("-").tolist() == ["-", "7", "7"]
