"""Settings: the template parses, errors name the field, periods produce the right dates."""

from __future__ import annotations

import datetime as dt

import pytest

from segflow.config import Settings
from segflow.engine import period_start, snapshot_dates
from segflow.errors import ConfigError
from segflow.project import TEMPLATE


def test_template_is_valid(tmp_path):
    (tmp_path / "segflow.toml").write_text(TEMPLATE.read_text())
    settings = Settings.load(tmp_path)
    assert settings.periods.granularity == "month"
    assert [s.name for s in settings.schemes] == ["rfm", "lifecycle"]
    assert settings.sources[0].columns["ts"] == "order_date"


def test_invalid_settings_name_the_field(tmp_path):
    (tmp_path / "segflow.toml").write_text('[periods]\ngranularity = "fortnight"\n')
    with pytest.raises(ConfigError, match="periods.granularity"):
        Settings.load(tmp_path)


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="segflow init"):
        Settings.load(tmp_path)
    (tmp_path / "segflow.toml").write_text("[periods\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(tmp_path)


@pytest.mark.parametrize(
    ("day", "granularity", "expected"),
    [
        (dt.date(2024, 5, 17), "month", dt.date(2024, 5, 1)),
        (dt.date(2024, 5, 17), "quarter", dt.date(2024, 4, 1)),
        (dt.date(2024, 12, 31), "quarter", dt.date(2024, 10, 1)),
        (dt.date(2024, 5, 17), "week", dt.date(2024, 5, 13)),  # a Friday -> Monday
        (dt.date(2024, 5, 13), "week", dt.date(2024, 5, 13)),
    ],
)
def test_period_start(day, granularity, expected):
    assert period_start(day, granularity) == expected


def test_snapshot_dates_cover_the_data():
    dates = snapshot_dates("month", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    # The first snapshot is the first boundary after the first day; the last sees every row.
    assert dates == [dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2024, 4, 1)]
    assert snapshot_dates("dates", dt.date(2024, 1, 1), dt.date(2024, 3, 1),
                          dates=[dt.date(2024, 3, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]) == [
        dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    assert snapshot_dates("quarter", dt.date(2023, 11, 5), dt.date(2024, 4, 2)) == [
        dt.date(2024, 1, 1), dt.date(2024, 4, 1), dt.date(2024, 7, 1)]
