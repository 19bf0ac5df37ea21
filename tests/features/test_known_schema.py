"""KnownSchema: a run's survey registry and features schema, read once and restricted to
groups, equal what customer_features builds for those groups."""

from __future__ import annotations

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
