"""``segflow clv fit|score`` on plain transaction files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_clv_fit_cdnow_json(cdnow_dir: Path) -> None:
    result = _run(
        "clv", "fit", "-t", str(cdnow_dir / "CDNOW_sample.txt"), "--calibration-end", "1997-09-30",
        "--holdout-end", "1998-06-30", "--time-unit", "week", "--model", "bgnbd", "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["params"]["r"] == pytest.approx(0.243, abs=5e-4)
    assert report["params"]["b"] == pytest.approx(2.426, abs=5e-4)
    assert report["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert set(report["standard_errors"]) == {"r", "alpha", "a", "b"}
    assert report["customers"] == {"in_summary": 2357, "fitted": 2357, "first_purchase_on_last_day": 0,
                                   "repeat_buyers": 946, "distinct_triples": 1016}
    assert round(report["spend_model"]["params"]["q"], 2) == 3.74
    metrics = {m["predictor"]: m for m in report["holdout"]["metrics"]}
    assert metrics["model"]["actual_total"] == 1882
    assert metrics["model"]["mae_purchases"] < metrics["last_period"]["mae_purchases"]


def test_clv_fit_csv_and_score_file(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    csv = tmp_path / "tx.csv"
    frame = cdnow_frame.rename(columns={"customer_id": "cust", "dollars": "value"})
    frame[["cust", "date", "value"]].to_csv(csv, index=False)
    result = _run(
        "clv", "fit", "-t", str(csv), "--customer-col", "cust", "--date-col", "date",
        "--date-format", "%Y%m%d", "--amount-col", "value", "--calibration-end", "1997-09-30",
        "--model", "pnbd", "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["params"]["s"] == pytest.approx(0.606, abs=5e-4)
    out = tmp_path / "scores.parquet"
    result = _run(
        "clv", "score", "-t", str(csv), "--customer-col", "cust", "--date-col", "date",
        "--date-format", "%Y%m%d", "--amount-col", "value", "--snapshot", "1997-10-01",
        "--horizon", "52", "--output", str(out), "--json",
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out)
    assert len(scores) == 2357
    assert {"p_alive", "expected_purchases", "clv"} <= set(scores.columns)
    assert (scores.p_alive.between(0, 1)).all() and (scores.clv >= 0).all()


def test_clv_errors_are_one_line(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("customer_id,ts,amount\na,2020-01-01,5\nb,not a date,3\n")
    result = _run("clv", "fit", "-t", str(csv), "--calibration-end", "2020-06-01")
    assert result.exit_code == 1
    assert "column 'ts'" in result.output and "not a date" in result.output
    assert "Traceback" not in result.output
    once = tmp_path / "once.csv"
    once.write_text("customer_id,ts,amount\na,2020-01-01,5\nb,2020-02-01,3\n")
    result = _run("clv", "fit", "-t", str(once), "--calibration-end", "2020-06-01")
    assert result.exit_code == 1
    assert "no repeat buyers" in result.output
    result = _run("clv", "fit", "-t", str(once), "--calibration-end", "2020-06-01", "--model", "xyz")
    assert result.exit_code == 2 and "'--model': 'xyz' is not one of bgnbd, mbgnbd" in result.output


def test_clv_score_into_project_store(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    import pyarrow as pa

    from segflow.project import Project

    with Project.init(tmp_path / "proj") as project:
        rows = pa.table(
            {
                "transaction_id": [str(i) for i in range(len(cdnow_frame))],
                "customer_id": cdnow_frame.customer_id.tolist(),
                "ts": pa.array(cdnow_frame.ts.to_numpy().astype("datetime64[us]")),
                "amount": cdnow_frame.dollars.to_numpy(float),
            }
        )
        project.store.append("transactions", rows)
    result = _run(
        "clv", "score", "--project", str(tmp_path / "proj"), "--snapshot", "1997-10-01",
        "--horizon", "39", "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scores"]["store_rows"] == 2357 * 5
    with Project.open(tmp_path / "proj") as project:
        stored = project.store.sql(
            "select score, count(*) n, min(value) lo, max(value) hi from customer_scores "
            "where model = 'bgnbd' and snapshot_date = DATE '1997-10-01' group by score"
        ).to_pandas().set_index("score")
        runs = project.store.sql("select status from runs where command = 'clv score'").to_pandas()
    assert set(stored.index) == {"p_alive", "expected_purchases", "p_no_purchase", "expected_spend", "clv"}
    assert (stored.n == 2357).all()
    assert stored.loc["p_alive", "hi"] <= 1.0 and stored.loc["clv", "lo"] >= 0
    assert runs.status.tolist() == ["ok"]


def test_clv_fit_bgbb_on_calendar_periods(cdnow_dir: Path) -> None:
    result = _run(
        "clv", "fit", "-t", str(cdnow_dir / "CDNOW_sample.txt"), "--calibration-end", "1998-06-30",
        "--time-unit", "month", "--model", "bgbb", "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["params"]) == {"alpha", "beta", "gamma", "delta"}
    assert report["customers"]["in_summary"] == 2357
    assert "spend_model" not in report


def test_clv_file_dates_that_read_either_way_are_refused(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    """Dates written 05/01/1997 with no day above 12 were read day-first by DuckDB's sniffer
    without a word (month-first files gave other estimates); now they are refused until
    --date-format says the order, and a month-first file whose days tell gives the estimates
    of the same rows written ISO."""
    dates = pd.to_datetime(cdnow_frame["date"].astype(str), format="%Y%m%d")

    def fit(frame: pd.DataFrame, name: str, *extra: str) -> dict:
        csv = tmp_path / name
        frame.to_csv(csv, index=False)
        result = _run("clv", "fit", "-t", str(csv), "--amount-col", "dollars",
                      "--calibration-end", "1997-09-30", "--json", *extra)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["params"]

    def written(fmt: str, rows: pd.Series) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": cdnow_frame.customer_id[rows],
                             "ts": dates[rows].dt.strftime(fmt), "dollars": cdnow_frame.dollars[rows]})

    low = dates.dt.day <= 12
    ambiguous = tmp_path / "mdy.csv"
    written("%m/%d/%Y", low).to_csv(ambiguous, index=False)
    result = _run("clv", "fit", "-t", str(ambiguous), "--amount-col", "dollars",
                  "--calibration-end", "1997-09-30")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "can be read day-first or month-first" in result.output and "column 'ts'" in result.output
    iso = fit(written("%Y-%m-%d", low), "iso.csv")
    assert fit(written("%m/%d/%Y", low), "mdy2.csv", "--date-format", "%m/%d/%Y") == iso
    assert fit(written("%d/%m/%Y", low), "dmy.csv", "--date-format", "%d/%m/%Y") == iso
    everyone = dates.notna()  # days up to 31: the order is told by the values
    assert fit(written("%m/%d/%Y", everyone), "all.csv") == fit(written("%Y-%m-%d", everyone), "alliso.csv")


def test_clv_file_errors_name_the_line(tmp_path: Path) -> None:
    """A bad line made DuckDB's sniffer read the file as one column ("no date column 'ts';
    columns are ['customer_id,ts,amount']"), and a bad date had no row number; now both
    name their line or row."""
    rows = "".join(f"c{i},2020-01-{i % 28 + 1:02d},{i}.5\n" for i in range(1, 40))
    extra = tmp_path / "extra.csv"  # line 41: a decimal comma splits the amount in two
    extra.write_text("customer_id,ts,amount\n" + rows + "c9,2020-02-01,1.234,5\n")
    result = _run("clv", "fit", "-t", str(extra), "--calibration-end", "2020-06-01")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "line 41 has 4 fields where the header has 3" in result.output
    quote = tmp_path / "quote.csv"  # data row 4 opens a quote that a later line closes
    quote.write_text("customer_id,ts,amount\n" + rows[:60].rsplit("\n", 1)[0] + "\n"
                     + 'c7,"2020-03-01,5\n' + rows + 'c8,2020-03-02,"7"\n')
    result = _run("clv", "fit", "-t", str(quote), "--calibration-end", "2020-06-01")
    assert result.exit_code == 1 and "row 4, column 'ts'" in result.output
    assert """date does not parse (first '"2020-03-01';""" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,ts,amount\na,2020-01-01,5\nb,2020-01-02,5\nb,not a date,3\n")
    result = _run("clv", "fit", "-t", str(bad), "--calibration-end", "2020-06-01")
    assert result.exit_code == 1 and "row 3, column 'ts'" in result.output


def test_clv_ambiguous_dates_hint_the_format_as_written(tmp_path: Path) -> None:
    """The refusal's hint follows the file: two-digit years give %y (a %Y read 24 as the year
    24), a time gives %H:%M; dates whose day equals their month read one way only; Excel's
    ``sep=,`` first line is read as before."""
    from segflow.cli._clv import read_transactions

    cases = {"yy.csv": ("05/01/24", "'%d/%m/%y' or --date-format '%m/%d/%y' or --date-format "
                        "'%y/%m/%d'"),
             "time.csv": ("05/01/2024 10:00", "'%d/%m/%Y %H:%M' or --date-format '%m/%d/%Y %H:%M'")}
    for name, (date, hint) in cases.items():
        (tmp_path / name).write_text(f"customer_id,ts,amount\na,{date},5\nb,{date},3\n")
        with pytest.raises(Exception, match="can be read day-first(,| or) month-first") as err:
            read_transactions(tmp_path / name)
        assert hint in str(err.value)
        fmt = hint.split("'")[1]
        table, col = read_transactions(tmp_path / name, date_format=fmt)
        assert str(table[col].execute().iloc[0])[:16] == ("2024-01-05 10:00" if ":" in date else "2024-01-05 00:00")
    same = tmp_path / "same.csv"
    same.write_text("customer_id,ts,amount\na,01/01/2024,5\nb,02/02/2024,3\n")
    table, col = read_transactions(same)
    assert [str(d)[:10] for d in table[col].execute()] == ["2024-01-01", "2024-02-02"]
    sep = tmp_path / "sep.csv"
    sep.write_text("sep=,\ncustomer_id,ts,amount\na,2024-01-05,5\n")
    table, col = read_transactions(sep)
    assert list(table.columns) == ["customer_id", "ts", "amount"]
