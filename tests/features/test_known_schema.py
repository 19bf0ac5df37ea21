"""KnownSchema: a run's survey registry and features schema, read once and restricted to
groups, equal what customer_features builds for those groups."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.features._fixture import S, make_tables, to_store

from segflow.features import REQUIRED_TABLES, customer_features, survey_registry
from segflow.features._core import KnownSchema
from segflow.store import Store


@pytest.fixture(scope="module")
def tables():
    store = Store(":memory:")
    to_store(store, make_tables())
    yield {name: store.table(name) for name in REQUIRED_TABLES}
    store.close()


def test_the_known_schema_of_groups_is_that_of_customer_features(tables):
    known = KnownSchema.read(tables, window_days=180)
    assert known.survey == survey_registry(tables["survey_responses"])
    assert {"lifestyle", "satisfaction_1_10", "survey_frequency"} <= set(known.survey)
    for groups in (None, {"rfm"}, {"rfm", "seasonality"}, {"survey", "web"}, {"attribute"}):
        want = customer_features(tables, S, window_days=180, groups=groups).schema()
        got = known.of_groups(groups)
        assert list(got.items()) == list(want.items()), groups
    assert KnownSchema().of_groups({"rfm"}) is None


def test_a_survey_question_named_like_an_rfm_score_does_not_replace_the_score():
    # a question "R score" was column `r_score`: a rule on `r_score` then read the answers
    # (the full run left the survey out instead; `segment` and a new month failed)
    from segflow.config import RuleSettings, SchemeSettings
    from segflow.features import question_column
    from segflow.segments import assign

    assert [question_column(q) for q in ("R score", "FM-Score", "r scores", "nps")] == [
        "survey_r_score", "survey_fm_score", "r_scores", "nps"]
    # nor the columns a run adds beside the features (the stored snapshot_date held the
    # answers to "Snapshot Date", `segment profile` profiled those to "segment")
    assert [question_column(q) for q in ("Snapshot Date", "segment", "Segment rank",
                                         "Customer ID", "scheme", "run id")] == [
        "survey_snapshot_date", "survey_segment", "survey_segment_rank", "survey_customer_id",
        "survey_scheme", "survey_run_id"]
    frames = make_tables()
    survey = frames["survey_responses"]
    answers = survey.head(20).assign(question="R score", answer="1")
    frames["survey_responses"] = pd.concat([survey, answers], ignore_index=True)
    store = Store(":memory:")
    to_store(store, frames)
    tables = {name: store.table(name) for name in REQUIRED_TABLES}
    features = customer_features(tables, S, window_days=180).cache()
    assert "survey_r_score" in features.columns and "r_score" not in features.columns
    scheme = SchemeSettings(name="recent", kind="rules", default="other", rules=[
        RuleSettings(segment="recent", when="r_score >= 4")])
    got = assign(scheme, features).to_pandas().set_index("customer_id").segment
    without = assign(scheme, features.drop("survey_r_score")).to_pandas()
    want = without.set_index("customer_id").segment
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index())
    assert (got == "recent").sum() > 0 and (got == "other").sum() > 0
    store.close()
