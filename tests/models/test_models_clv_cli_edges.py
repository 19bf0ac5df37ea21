"""``segflow clv fit|score`` on the situations of real shops: inclusive calibration dates,
first purchases on the last day, heavy-tailed spend, one-price shops, no repeat buyers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _cdnow_csv(tmp_path: Path, frame: pd.DataFrame, extra: list[tuple[str, str, float]] = ()) -> Path:
    rows = frame[["customer_id", "ts", "dollars"]].rename(columns={"dollars": "amount"})
    rows = rows.assign(ts=rows.ts.dt.strftime("%Y-%m-%d"))
    if extra:
        rows = pd.concat([rows, pd.DataFrame(extra, columns=rows.columns)], ignore_index=True)
    path = tmp_path / "tx.csv"
    rows.to_csv(path, index=False)
    return path


def test_calibration_and_holdout_end_are_inclusive(cdnow_dir: Path, cdnow_frame: pd.DataFrame) -> None:
    """Fader, Hardie & Lee (2005): calibration to 1997-09-30, holdout 1997-10-01 .. 1998-06-30
    (39 weeks each): r 0.243, alpha 4.414, a 0.793, b 2.426."""
    result = _run("clv", "fit", "-t", cdnow_dir / "CDNOW_sample.txt", "--calibration-end",
                  "1997-09-30", "--holdout-end", "1998-06-30", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    got = {k: round(v, 3) for k, v in report["params"].items()}
    assert got == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert report["calibration_end"] == "1997-09-30"
    assert report["calibration"] == {"first_day": "1997-01-01", "last_day": "1997-09-30",
                                     "days": 273, "length": 39.0, "unit": "week"}
    hold = report["holdout"]
    assert (hold["first_day"], hold["last_day"], hold["days"], hold["length"]) == (
        "1997-10-01", "1998-06-30", 273, 39.0)
    # the holdout keeps its last day: purchase days of the calibration's customers from
    # 1997-10-01 through 1998-06-30, counted independently on the raw file
    f = cdnow_frame
    known = set(f.loc[f.ts <= "1997-09-30", "customer_id"])
    hold_rows = f[(f.ts >= "1997-10-01") & (f.ts <= "1998-06-30") & f.customer_id.isin(known)]
    actual = len(hold_rows[["customer_id", "ts"]].drop_duplicates())
    assert (f.ts == "1998-06-30").any()  # the day the exclusive reading dropped
    model_row = next(m for m in hold["metrics"] if m["predictor"] == "model")
    assert model_row["actual_total"] == actual

    # --snapshot names the day after the calibration: the same fit
    same = _run("clv", "fit", "-t", cdnow_dir / "CDNOW_sample.txt", "--snapshot", "1997-10-01",
                "--spend-model", "none")
    assert same.exit_code == 0, same.output
    assert "calibration: 1997-01-01 .. 1997-09-30 (273 days = 39 weeks)" in same.stdout
    assert "0.2426" in same.stdout


def test_date_options_are_checked(cdnow_dir: Path) -> None:
    both = _run("clv", "fit", "-t", cdnow_dir / "CDNOW_sample.txt", "--calibration-end",
                "1997-09-30", "--snapshot", "1997-10-01")
    assert both.exit_code == 1 and "not both" in both.output
    neither = _run("clv", "fit", "-t", cdnow_dir / "CDNOW_sample.txt")
    assert neither.exit_code == 1 and "one of them is needed" in neither.output
    assert "not both" not in neither.output
    early = _run("clv", "fit", "-t", cdnow_dir / "CDNOW_sample.txt", "--calibration-end",
                 "1997-09-30", "--holdout-end", "1997-09-01")
    assert early.exit_code == 1 and "--holdout-end" in early.output


def _new_customer_expectation(params: dict[str, float], t: float) -> float:
    """E[X(t)] of a new BG/NBD customer by integrating (1 - exp(-lambda p t)) / p."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))

    def inner(p: float) -> float:
        return (1 - (alpha / (alpha + p * t)) ** r) / p * stats.beta.pdf(p, a, b)

    return integrate.quad(inner, 0, 1, limit=200)[0]


def test_first_purchase_on_the_last_calibration_day(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    csv = _cdnow_csv(tmp_path, cdnow_frame, [("newcomer", "1997-09-30", 25.0)])
    result = _run("clv", "fit", "-t", csv, "--calibration-end", "1997-09-30", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k: round(v, 3) for k, v in report["params"].items()} == {
        "r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert report["customers"]["in_summary"] == 2358
    assert report["customers"]["fitted"] == 2357
    assert report["customers"]["first_purchase_on_last_day"] == 1
    assert any(note.startswith("1 customer made a first purchase") and "T = 0" in note
               for note in report["notes"])
    # the fit line counts the customers fitted, as the note (it said "2358 customers")
    from segflow.cli._clv_fit import customers_line

    c = report["customers"]
    assert customers_line(c) == (
        f"2,357 customers fitted (of 2,358: 1 with T = 0 left out), {c['repeat_buyers']:,} "
        f"repeat buyers, {c['distinct_triples']:,} distinct triples")

    out = tmp_path / "scores.csv"
    result = _run("clv", "score", "-t", csv, "--calibration-end", "1997-09-30", "--horizon", "52",
                  "-o", out, "--json")
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["params"]
    scores = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    assert len(scores) == 2358
    new = scores.loc["newcomer"]
    assert (new["x"], new["T"], new["p_alive"]) == (0, 0.0, 1.0)
    assert new.expected_purchases == pytest.approx(_new_customer_expectation(params, 52), rel=1e-6)


def _purchase_days(rng: np.random.Generator, n: int) -> list[list[int]]:
    """Purchase days per customer: Poisson while alive (rate ~ Gamma(0.8, 1/30) per day),
    exponential lifetimes of mean 200 days, first purchases over the first 300 days;
    observed to day 730."""
    out = []
    for _ in range(n):
        rate = rng.gamma(0.8, 1 / 30.0)
        first = float(rng.integers(0, 300))
        end = min(first + rng.exponential(200.0), 730.0)
        times = [first]
        while True:
            nxt = times[-1] + rng.exponential(1 / rate)
            if nxt >= end:
                break
            times.append(nxt)
        out.append(sorted({int(t) for t in times}))
    return out


def _heavy_tailed_csv(tmp_path: Path, seed: int = 11) -> tuple[Path, pd.DataFrame]:
    """Orders Gamma(1.5, nu) per customer, nu ~ Gamma(0.7, 100): spend with q < 1."""
    rng = np.random.default_rng(seed)
    rows = []
    start = dt.date(2022, 1, 1)
    for i, days in enumerate(_purchase_days(rng, 500)):
        nu = rng.gamma(0.7, 1 / 100.0)
        for d in days:
            rows.append((f"c{i:04d}", str(start + dt.timedelta(days=d)),
                         round(float(rng.gamma(1.5, 1 / nu)), 2)))
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    path = tmp_path / "heavy.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_q_below_one_warns_at_fit_and_scores_repeat_buyers(tmp_path: Path) -> None:
    csv, frame = _heavy_tailed_csv(tmp_path)
    result = _run("clv", "fit", "-t", csv, "--calibration-end", "2023-12-31", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    spend = report["spend_model"]["params"]
    assert spend["q"] < 1
    assert any("<= 1" in w and "heavy-tailed" in w for w in report["warnings"])
    assert report["spend_model"]["population_mean_spend"] is None  # infinite -> null

    out = tmp_path / "scores.csv"
    result = _run("clv", "score", "-t", csv, "--calibration-end", "2023-12-31", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out, dtype={"customer_id": str})
    assert len(scores) == frame.customer_id.nunique()
    assert scores.p_alive.notna().all() and scores.expected_purchases.notna().all()
    one_time = scores.x == 0
    assert scores.loc[one_time, "clv"].isna().all()
    assert scores.loc[~one_time, "clv"].notna().all()
    # a repeat buyer's expected spend: p (gamma + m x) / (p x + q - 1) with m its repeat mean
    p, q, gamma = spend["p"], spend["q"], spend["gamma"]
    row = scores[~one_time].iloc[0]
    days = frame[frame.customer_id == row.customer_id].groupby("ts").amount.sum().sort_index()
    m = days.iloc[1:].mean()
    assert row.expected_spend == pytest.approx(p * (gamma + m * row.x) / (p * row.x + q - 1), rel=1e-6)
    notes = json.loads(result.stdout)["notes"]
    assert any(f"{int(one_time.sum())} customers have no expected_spend" in n for n in notes)


def _one_price_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    rows = []
    for i, days in enumerate(_purchase_days(rng, 400)):
        for d in days:
            day = str(dt.date(2022, 1, 1) + dt.timedelta(days=d))
            if i % 7 == 0:  # an order written as two lines: 9.99 + 10.00
                rows += [(f"u{i}", day, 9.99), (f"u{i}", day, 10.0)]
            else:
                rows.append((f"u{i}", day, 19.99))
    path = tmp_path / "one_price.csv"
    pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).to_csv(path, index=False)
    return path


def test_one_price_shop_spends_that_price(tmp_path: Path) -> None:
    csv = _one_price_csv(tmp_path)
    out = tmp_path / "scores.csv"
    base = ("clv", "score", "-t", csv, "--snapshot", "2024-01-01", "--margin", "0.5", "-o", out)
    result = _run(*base, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["spend_model"]["model"] == "constant"
    # the price as written in the file (19.99), not an average of means that carry summation
    # error in their last bits (19.98999999999999 before session 38)
    assert report["spend_model"]["expected_spend"] == 19.99
    assert any("same mean spend 19.99" in n for n in report["notes"])
    assert "19.99," in out.read_text().splitlines()[1]
    scores = pd.read_csv(out)
    assert (scores.expected_spend == 19.99).all()
    assert scores.clv.to_numpy() == pytest.approx(0.5 * 19.99 * scores.discounted_purchases.to_numpy())

    result = _run(*base, "--spend-model", "none")
    assert result.exit_code == 0, result.output
    assert "clv" not in pd.read_csv(out).columns
    assert "--order-value" in result.output

    result = _run(*base, "--spend-model", "none", "--order-value", "25")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert scores.clv.to_numpy() == pytest.approx(0.5 * 25 * scores.discounted_purchases.to_numpy())

    # a user-given average order value also works without an amount column
    result = _run(*base, "--amount-col", "none", "--spend-model", "none", "--order-value", "25")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert scores.clv.to_numpy() == pytest.approx(0.5 * 25 * scores.discounted_purchases.to_numpy())

    result = _run(*base, "--spend-model", "constant")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out).expected_spend.to_numpy() == pytest.approx(19.99, rel=1e-12)

    result = _run(*base, "--order-value", "25")
    assert result.exit_code == 1 and "--spend-model constant or none" in result.output


def test_no_repeat_buyers_hint_is_the_same_for_every_unit(tmp_path: Path) -> None:
    csv = tmp_path / "once.csv"
    days = pd.date_range("2023-01-01", periods=150, freq="D").strftime("%Y-%m-%d")
    pd.DataFrame({"customer_id": [f"u{i}" for i in range(150)], "ts": days,
                  "amount": 10.0}).to_csv(csv, index=False)
    messages = set()
    for unit in ("day", "week", "month"):
        result = _run("clv", "fit", "-t", csv, "--calibration-end", "2023-12-31", "--time-unit", unit)
        assert result.exit_code == 1
        assert "no repeat buyers" in result.output and "coarser" not in result.output
        messages.add(result.output)
    assert len(messages) == 1


def test_a_non_finite_amount_is_refused_naming_the_rows(tmp_path: Path) -> None:
    """An infinite amount made the customer's mean repeat spend NaN (inf - inf) and the spend
    model was dropped with only a warning naming the customer: now an error naming the
    file, the rows, the column and the value as written."""
    csv = _one_price_csv(tmp_path)
    frame = pd.read_csv(csv)
    days = frame.groupby("customer_id").ts.nunique()
    repeat = sorted(days[days > 1].index)[0]
    frame.loc[frame.customer_id == repeat, "amount"] = np.inf
    frame.to_csv(csv, index=False)
    rows = [i + 1 for i in np.flatnonzero(frame.customer_id == repeat)]
    result = _run("clv", "fit", "-t", csv, "--snapshot", "2024-01-01", "--json")
    assert result.exit_code == 1, result.output
    from segflow.errors import where

    assert " ".join(result.output.split()) == (
        f"error: {where(str(csv), rows[:3], 'amount', rows_in_all=len(rows))}: {len(rows)} "
        f"amounts are infinite, not a number or too large to compute with (first 'inf', row "
        f"{rows[0]}; expected amounts within +-1e+150); correct or remove those rows")


@pytest.mark.parametrize("command", [("fit",), ("score", "-o", "scores.csv")])
def test_a_text_amount_is_one_error_line_naming_the_row(tmp_path: Path, command: tuple[str, ...]) -> None:
    """An amount with a currency made DuckDB type the column as text; the cast to a number
    then stopped with an engine traceback. (``NA`` is a missing amount: see
    test_models_clv_cli_inputs.)"""
    csv = tmp_path / "na.csv"
    csv.write_text("customer_id,ts,amount\na,2024-01-01,10\na,2024-02-01,12 EUR\nb,2024-01-05,5\n"
                   "b,2024-03-01,7\nc,2024-02-01,3\n")
    args = [a if a != "scores.csv" else tmp_path / a for a in command]
    result = _run("clv", *args, "-t", csv, "--snapshot", "2024-06-01")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [
        f"error: file {csv}, row 2, column 'amount': expected a number, got '12 EUR' (remove or "
        "correct the row, or give --amount-col none to count purchases only)"]
    assert not (tmp_path / "scores.csv").exists()


def test_score_refuses_an_output_it_cannot_write(tmp_path: Path) -> None:
    """`clv score -o scores.xlsx` wrote CSV text into the .xlsx file (and said so)."""
    csv = _one_price_csv(tmp_path)
    target = tmp_path / "scores.xlsx"
    result = _run("clv", "score", "-t", csv, "--snapshot", "2024-01-01", "-o", target)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: --output {target}: use a .csv or .parquet file name"
    assert not target.exists()


def test_rows_without_an_amount_are_noted_not_counted_as_returns(tmp_path: Path) -> None:
    """An empty amount cell was counted in the warning as a 'return-only customer-day'."""
    csv = tmp_path / "gaps.csv"
    csv.write_text("customer_id,ts,amount\na,2024-01-01,10\na,2024-02-01,\na,2024-02-03,-4\n"
                   "b,2024-01-05,5\nb,2024-03-01,7\nc,2024-02-01,3\nd,2024-02-01,\n")
    result = _run("clv", "fit", "-t", csv, "--snapshot", "2024-06-01", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # named by file, data rows (1: line 2; the empty amounts are on lines 3 and 8) and column
    assert (f"file {csv}, rows 2 and 7, column 'amount': 2 rows have no amount and are no "
            "purchases (not a return either)") in report["notes"]
    # the one return day (a, 2024-02-03); d bought nothing with an amount and is left out
    assert ("btyd_summary: 1 return-only customer-days are not purchases; 1 of 4 customers "
            "have no purchase and are excluded") in report["warnings"]
    assert report["customers"]["in_summary"] == 3


def test_a_calibration_past_the_data_is_warned(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    """CDNOW ends 1998-06-30: a fit to 1998-12-31 reads half a year without data as half a
    year without purchases; warned with the gap (days after the last purchase day), in fit
    and score alike. A calibration ending a month after the data is not."""
    csv = _cdnow_csv(tmp_path, cdnow_frame)
    last = cdnow_frame.ts.max().date()
    assert last == dt.date(1998, 6, 30)
    want = ("the calibration ends 1998-12-31, 184 days after the last purchase day (1998-06-30): "
            "the model reads those days as days without purchases")
    result = _run("clv", "fit", "-t", csv, "--calibration-end", "1998-12-31", "--json")
    assert result.exit_code == 0, result.output
    assert any(w.startswith(want) for w in json.loads(result.stdout)["warnings"]), result.stdout
    result = _run("clv", "fit", "-t", csv, "--calibration-end", "1998-12-31")
    assert want in " ".join(result.stderr.split()), result.stderr
    result = _run("clv", "score", "-o", tmp_path / "scores.csv", "-t", csv, "--snapshot", "1999-01-01")
    assert result.exit_code == 0 and want in " ".join(result.stderr.split()), result.stderr
    result = _run("clv", "fit", "-t", csv, "--calibration-end", "1998-07-31", "--json")
    assert result.exit_code == 0 and "after the last purchase day" not in result.output


def test_a_file_not_in_utf8_says_so(tmp_path: Path) -> None:
    """A Latin-1 export ('é' as one byte) was "CSV Error on Line: 2" alone."""
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer_id,ts,amount\nRené,2024-01-02,10\nc2,2024-01-03,5\n".encode("latin-1"))
    result = _run("clv", "fit", "-t", path, "--snapshot", "2024-02-01")
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = " ".join(result.output.split())
    assert "CSV Error on Line: 2: the file is not UTF-8" in line and "iconv -f latin1 -t utf-8" in line


def test_a_zero_horizon_scores_zero_not_minus_zero(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    csv = _cdnow_csv(tmp_path, cdnow_frame)
    out = tmp_path / "scores.csv"
    result = _run("clv", "score", "-t", csv, "--calibration-end", "1997-09-30", "--horizon", "0", "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert ",-0," not in text and ",-0\n" not in text
    scores = pd.read_csv(out)
    assert (scores.expected_purchases == 0).all() and (scores.clv == 0).all()


def test_a_calibration_before_the_first_purchase_says_so(tmp_path: Path) -> None:
    """A calibration that ends before the first purchase (or on its day, every customer at
    T = 0) said only "BetaGeoModel: the summary holds no customers"; now the file, the first
    purchase and the calibration end (``--snapshot``: the day before it); the holdout's
    error names the calibration end too."""
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\nc2,2023-02-05,5\nc1,2023-01-01,10\nc1,2023-03-01,7\n")

    def error(*args: str) -> str:
        result = _run("clv", *args, "-t", path)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        return " ".join(result.output.split())

    later = "give a later --calibration-end (or --snapshot)"
    assert error("fit", "--calibration-end", "2010-01-01") == (
        f"error: file {path}: no purchase to fit on: the first purchase is on 2023-01-01, after the "
        f"calibration end 2010-01-01 (the day before the snapshot 2010-01-02); {later}")
    assert error("score", "--snapshot", "2023-01-01", "-o", str(tmp_path / "s.csv")) == (
        f"error: file {path}: no purchase to fit on: the first purchase is on 2023-01-01, after the "
        f"calibration end 2022-12-31 (the day before the snapshot 2023-01-01); {later}")
    assert error("fit", "--calibration-end", "2023-01-01") == (
        f"error: file {path}: no purchase to fit on: the first purchase is on 2023-01-01, the calibration "
        "end (the day before the snapshot 2023-01-02), so every customer in the calibration has T = 0 (a "
        f"first purchase on its last day), which tells the model nothing; {later}")
    assert error("fit", "--calibration-end", "2023-02-28", "--holdout-end", "2023-02-01") == (
        "error: --holdout-end 2023-02-01 must be on or after the first holdout day 2023-03-01 (the day "
        "after the calibration end 2023-02-28)")
    assert not (tmp_path / "s.csv").exists()
    path.write_text("customer_id,ts,amount\nc1,2023-01-01,-10\n")  # a return alone
    assert error("fit", "--calibration-end", "2023-06-01") == (
        f"error: file {path}: no purchase to fit on: no row is a purchase (a line of a customer, with a "
        "date and an amount of 0 or more)")


def test_a_transaction_file_padded_as_excel_pads_it_fits(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    """Excel's padding (empty names at the header's end, every other row ending in empty
    fields, `T2,C1,2024-02-02,12.00,,`) is ignored by `clv fit -t` as by ingest
    (docs/data.md): the CDNOW sample so padded gives the published BG/NBD estimates
    (Fader, Hardie & Lee 2005: r 0.243, alpha 4.414, a 0.793, b 2.426)."""
    clean = _cdnow_csv(tmp_path, cdnow_frame).read_text().splitlines()
    padded = tmp_path / "padded.csv"
    padded.write_text("\n".join([clean[0] + ",", *(row + ("," * (i % 3)) for i, row in
                                                   enumerate(clean[1:]))]) + "\n")
    result = _run("clv", "fit", "-t", padded, "--calibration-end", "1997-09-30", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k: round(v, 3) for k, v in report["params"].items()} == {
        "r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert report["customers"]["in_summary"] == 2357
