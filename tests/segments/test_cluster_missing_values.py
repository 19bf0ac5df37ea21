"""Missing values in the customer files of ``segflow segment cluster/profile``: an empty cell
and ingest's missing-value tokens are missing in every format (CSV, Parquet, Excel), a
missing text value is the category '(missing)', a warning counts the customers of each
feature, and ``--null-values ''`` keeps a real ``NA`` (Namibia)."""

from __future__ import annotations

import json

import ibis
import pandas as pd
import pytest
from typer.testing import CliRunner

from segflow.cli import app
from segflow.cli._cluster import read_customer_file

runner = CliRunner()

#: Text cells of a country column: two real countries, then a token, an empty cell, more
#: tokens and a padded one, and two that are no token of ingest (``n/a``, ``nan``).
COUNTRIES = ["DE", "FR", "NA", "", "N/A", "-", " NA ", "n/a", "nan", "DE", "FR", "DE"]


def _frame() -> pd.DataFrame:
    n = len(COUNTRIES)
    spend = [float(10 * (i % 3) + i) for i in range(n)]
    spend[1] = None  # an empty cell
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "spend": spend,
                         "country": COUNTRIES})


@pytest.mark.parametrize("kind", ["csv", "parquet", "xlsx"])
def test_tokens_and_blanks_are_missing_in_every_format(tmp_path, kind):
    """A CSV read them as missing, a Parquet file kept 'NA', '' and '-' as three categories,
    Excel used pandas' own list ('n/a' and 'nan' missing, ' NA ' a category): now all three
    read the file as ingest does."""
    path = tmp_path / f"c.{kind}"
    frame = _frame()
    {"csv": lambda: frame.to_csv(path, index=False), "parquet": lambda: frame.to_parquet(path),
     "xlsx": lambda: frame.to_excel(path, index=False)}[kind]()
    con = ibis.duckdb.connect()
    got = read_customer_file(con, path, id_col="customer_id", name="t").to_pandas()
    assert got.country.fillna("<missing>").tolist() == [
        "DE", "FR", "<missing>", "<missing>", "<missing>", "<missing>", "<missing>", "n/a", "nan",
        "DE", "FR", "DE"]
    assert got.spend.isna().tolist() == [i == 1 for i in range(len(COUNTRIES))]
    kept = read_customer_file(con, path, id_col="customer_id", name="u", null_values=()).to_pandas()
    assert kept.country.fillna("<missing>").tolist()[2:7] == ["NA", "<missing>", "N/A", "-", " NA "]


def test_cluster_counts_the_missing_values_of_each_feature(tmp_path):
    """The warning names the column, counts the customers and says what they became; the JSON
    has the counts. With --null-values '' the country code NA is a category of its own."""
    path = tmp_path / "c.csv"
    _frame().to_csv(path, index=False)
    args = ["segment", "cluster", "-i", str(path), "--k", "2", "--bootstrap", "0", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_values"] == {"spend": 1, "country": 5}
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: column")]
    assert warned == [
        "warning: column 'spend': 1 of 12 customers have no value (an empty cell or a "
        "missing-value token such as NA); each gets the sample median of 'spend'",
        "warning: column 'country': 5 of 12 customers have no value (an empty cell or a "
        "missing-value token such as NA); they are clustered as one more category, '(missing)'",
    ]
    kept = runner.invoke(app, [*args, "--null-values", ""])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["missing_values"] == {"spend": 1, "country": 1}
    assert ("warning: column 'country': 1 of 12 customers have no value (an empty cell); they "
            "are clustered as one more category, '(missing)'") in kept.stderr.splitlines()


def test_profile_reads_the_file_with_the_same_tokens(tmp_path):
    """segment profile takes --null-values too: with the default, a spend 'NA' is a missing
    number; with '' the column is text, and as the value column that is one line, not the
    DuckDB conversion traceback it was for any text value column ('n/a')."""
    path, assigned = tmp_path / "c.csv", tmp_path / "a.csv"
    frame = _frame().assign(spend=[str(v) for v in range(len(COUNTRIES))])
    frame.loc[4, "spend"] = "NA"
    frame.to_csv(path, index=False)
    pd.DataFrame({"customer_id": frame.customer_id,
                  "segment": ["a", "b"] * (len(frame) // 2)}).to_csv(assigned, index=False)
    args = ["segment", "profile", "-i", str(path), "-a", str(assigned), "--value-col", "spend"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    # spend 0..11 without the 4: a = 0+2+6+8+10 = 26, b = 1+3+5+7+9+11 = 36
    shares = {r["segment"]: r["revenue_share"] for r in json.loads(result.stdout)["data"]}
    assert shares == pytest.approx({"a": 26 / 62, "b": 36 / 62})
    text = runner.invoke(app, [*args, "--null-values", ""])
    assert text.exit_code == 1
    assert text.output.strip().splitlines()[-1] == (  # 'NA' is data row 5 (line 6)
        f"error: file {path}, row 5, column 'spend': 11 numbers and 1 text value (first 'NA', "
        "row 5) in a column of numbers; empty those cells for missing values (or name the text "
        "in --null-values)")


def test_profile_value_column_errors_name_the_file_rows_and_column(tmp_path):
    """The value column's errors name the file, the first offending rows (1: the first data
    row, line 2) and the column; a text column of numbers only is read as numbers."""
    from segflow.cli._customer_file import check_value_column
    from segflow.errors import InputError

    spend = ["1", "n/a", "3", "12 EUR", None, "x", "7", "?"]  # rows 2, 4, 6 and 8: not numbers
    table = ibis.memtable({"customer_id": [f"C{i}" for i in range(len(spend))], "spend": spend})
    with pytest.raises(InputError) as info:
        check_value_column(table, "spend", tmp_path / "f.csv")
    assert str(info.value) == (
        f"file {tmp_path / 'f.csv'}, rows 2, 4, 6, ... (4 in all), column 'spend': the value "
        "column holds text, not numbers ('n/a' on row 2); empty those cells or choose another "
        "--value-col")
    assert info.value.rows == (2, 4, 6) and info.value.row == 2
    with pytest.raises(InputError, match=r"f.csv, header, column 'spnd': no value column 'spnd'; "
                                         r"did you mean 'spend'\?"):
        check_value_column(table, "spnd", tmp_path / "f.csv")
    assert check_value_column(table, None, tmp_path / "f.csv") is table  # no `monetary`: none
    numbers = ibis.memtable({"customer_id": ["a", "b", "c"], "spend": ["1.5", None, " 2"]})
    got = check_value_column(numbers, "spend", tmp_path / "f.parquet").to_pyarrow()
    assert got["spend"].to_pylist() == [1.5, None, 2.0]


def test_null_values_is_for_files(tmp_path):
    """A project's features are typed: --null-values there would do nothing; an error says so."""
    for args in (["segment", "cluster"], ["segment", "profile", "--scheme", "rfm"]):
        result = runner.invoke(app, [*args, "--null-values", "NA", "-p", str(tmp_path)])
        assert result.exit_code == 1, result.output
        assert result.output.strip() == ("error: --null-values applies to --input files; "
                                         "project features are typed")


def test_a_parquet_text_column_of_numbers_with_tokens_is_numbers(tmp_path):
    """A Parquet file whose number columns were written as text (a CSV re-saved by pandas:
    '12.5', '-', ' NA ') was clustered on one category per value; with the tokens missing
    and only numbers left, the column is numbers (gaps: the median), as from the CSV."""
    import ibis
    import pandas as pd

    from segflow.cli._customer_file import read_customer_file

    spend = ["12.5", "-", " NA ", "40", "7.25", "", "19"]
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(7)], "spend": spend,
                          "note": ["a", "NA", "b", "c", "-", "d", "e"]})
    path = tmp_path / "text_numbers.parquet"
    frame.to_parquet(path, index=False)
    table = read_customer_file(ibis.duckdb.connect(), path, id_col="customer_id", name="f")
    assert table.schema()["spend"].is_floating() and table.schema()["note"].is_string()
    got = table.order_by("customer_id").execute()
    assert got["spend"].isna().tolist() == [False, True, True, False, False, True, False]
    assert got["spend"].dropna().tolist() == [12.5, 40.0, 7.25, 19.0]
    assert got["note"].isna().sum() == 2
