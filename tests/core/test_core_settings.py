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


def test_an_error_in_a_list_of_tables_names_the_entry_and_its_position_from_1(tmp_path):
    """The path said ``sources.1.table`` (pydantic's 0-based index, no name): now the entry
    by its name (a rule by its segment) and its position from 1, a value of a list of values
    by its position, other keys dotted as before."""
    path = tmp_path / "segflow.toml"
    path.write_text(
        '[[sources]]\nname = "crm"\ntable = "customers"\npath = "crm.csv"\n'
        '[[sources]]\nname = "orders"\ntable = "transaction"\npath = "orders.csv"\n'
        '[[sources]]\ntable = "events"\npath = "ev.csv"\nnull_values = ["", 3]\n'
        '[[schemes]]\nname = "r"\nkind = "rfm"\n'
        '[[schemes]]\nname = "vip"\nkind = "rules"\ntiers = [1.0, "x"]\n'
        '[[schemes.rules]]\nsegment = "Gold"\nwhen = "monetary_12m > 1"\n'
        '[[schemes.rules]]\nsegment = "Silver"\n'
        '[[schemes.rules]]\nwhen = "frequency > 1"\n'
        '[periods]\ngranularity = "fortnight"\n')
    with pytest.raises(ConfigError) as caught:
        Settings.load(tmp_path)
    allowed = "'customers', 'transactions', 'events', 'campaign_exposures' or 'survey_responses'"
    assert str(caught.value).split("; ") == [
        f"{path}: periods.granularity: Input should be 'week', 'month', 'quarter' or 'dates'",
        f"source 'orders' (the 2nd [[sources]]): table: Input should be {allowed}",
        "the 3rd [[sources]]: name: Field required",
        "the 3rd [[sources]]: null_values (2nd value): Input should be a valid string",
        "scheme 'vip' (the 2nd [[schemes]]): rule 'Silver' (the 2nd of its rules): when: "
        "Field required",
        "scheme 'vip' (the 2nd [[schemes]]): the 3rd of its rules: segment: Field required",
        "scheme 'vip' (the 2nd [[schemes]]): tiers (2nd value): Input should be a valid number, unable "
        "to parse string as a number",
    ]


def test_ordinals():
    from segflow.config._errors import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th", "112th"]


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


def test_validator_messages_lose_pydantic_value_error_prefix(tmp_path):
    """pydantic writes "Value error, " before a validator's message: segflow.toml's errors
    give the message alone."""
    from segflow.config import Settings
    from segflow.errors import ConfigError

    (tmp_path / "segflow.toml").write_text('[[schemes]]\nname = "vip"\nkind = "rfm"\n'
                                           '[[schemes]]\nname = "vip"\nkind = "lifecycle"\n')
    with pytest.raises(ConfigError) as info:
        Settings.load(tmp_path)
    assert str(info.value) == (f"{tmp_path / 'segflow.toml'}: schemes: two schemes are named "
                               "'vip'; scheme names must differ")
