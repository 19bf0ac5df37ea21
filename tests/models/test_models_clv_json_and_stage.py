"""The CLI's JSON keeps full precision and one date format; the run's CLV stage survives
bad customers and says so when it cannot run (text output, run log, report)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segflow._result import TableResult, json_records
from segflow.cli._common import print_json


class _Frame(TableResult):
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def to_pandas(self) -> pd.DataFrame:
        return self.frame


def test_json_keeps_full_precision_and_one_date_format(capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame({
        "p_value": [1.5e-13, 0.04],
        "estimate": [0.24259538766129, 2 / 3],
        "snapshot": pd.to_datetime(["2024-01-01", "2024-02-01"]),
        "at": pd.to_datetime(["2024-01-01 10:30:00", "2024-01-02 00:00:00"]),
        "missing": [np.nan, 1.0],
    })
    # what pandas' to_json does (the fault): 10 decimals
    assert json.loads(frame.to_json(orient="records", date_format="iso"))[0]["p_value"] == 0.0
    for records in (json_records(frame), _Frame(frame).to_dict()["data"],
                    json.loads(_Frame(frame).to_json())["data"]):
        assert records[0]["p_value"] == 1.5e-13
        assert records[0]["estimate"] == 0.24259538766129
        assert records[1]["estimate"] == pytest.approx(2 / 3, rel=1e-15)
        assert records[0]["snapshot"] == "2024-01-01"  # a date column: YYYY-MM-DD
        assert records[0]["at"] == "2024-01-01T10:30:00"  # a point in time: isoformat
        assert records[1]["at"] == "2024-01-02T00:00:00"
        assert records[0]["missing"] is None
    total = sum([0.1] * 10)  # 0.9999999999999999: summation noise
    print_json({"total": total, "tiny": 1.5e-13, "day": dt.date(2024, 1, 1),
                "when": dt.datetime(2024, 1, 1, 8, 0), "n": np.int64(3), "x": np.float64(np.nan),
                "share": 0.1 + 0.2})
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert payload == {"total": 1.0, "tiny": 1.5e-13, "day": "2024-01-01",
                       "when": "2024-01-01T08:00:00", "n": 3, "x": None, "share": 0.3}
    assert "NaN" not in out


def _project(tmp_path, rows: list[tuple[str, str, float]]):  # noqa: ANN202
    from segflow.project import Project

    project = Project.init(
        tmp_path / "proj",
        toml_text='[periods]\ngranularity = "dates"\ndates = [2024-01-01]\n'
        '[[schemes]]\nname = "rfm"\nkind = "rfm"\n',
    )
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    project.store.append("transactions", pa.table({
        "transaction_id": [str(i) for i in range(len(frame))],
        "customer_id": frame.customer_id,
        "ts": pd.to_datetime(frame.ts).astype("datetime64[us]"),
        "amount": frame.amount.astype(float),
    }))
    return project


def _shop(seed: int = 4, n: int = 400) -> list[tuple[str, str, float]]:
    """Purchase days with dropout (Poisson while alive, exponential lifetimes), amounts
    Gamma-distributed around 40 per order."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rate = rng.gamma(0.8, 1 / 30.0)
        first = float(rng.integers(0, 300))
        end = min(first + rng.exponential(200.0), 729.0)
        times = [first]
        while (nxt := times[-1] + rng.exponential(1 / rate)) < end:
            times.append(nxt)
        scale = rng.gamma(4.0, 10.0) / 4.0
        for d in sorted({int(t) for t in times}):
            day = str(dt.date(2022, 1, 1) + dt.timedelta(days=d))
            rows.append((f"c{i}", day, round(float(rng.gamma(4.0, scale)), 2)))
    return rows


def test_nonpositive_mean_spend_does_not_drop_the_clv_stage(tmp_path) -> None:
    rows = _shop()
    # two repeat buyers whose repeat orders are free (zero-value lines are purchases), one
    # with a same-day return as well: mean repeat spend 0, no Gamma density
    rows += [("neg1", "2023-03-01", 50.0), ("neg1", "2023-05-01", 0.0), ("neg1", "2023-05-01", -60.0),
             ("neg2", "2023-02-01", 30.0), ("neg2", "2023-06-01", 0.0), ("neg2", "2023-07-01", 0.0)]
    project = _project(tmp_path, rows)
    with project:
        summary = project.run()
        assert any("2 repeat buyers with a zero or negative mean spend" in n for n in summary.notes)
        scores = project.store.raw.execute(
            "SELECT customer_id, score, value FROM customer_scores"
        ).df().pivot(index="customer_id", columns="score", values="value")
    customers = {r[0] for r in rows}
    assert summary.scores_written == len(customers) * 5
    assert set(scores.index) == customers
    # the two are scored with the population's expected spend p gamma / (q - 1)
    from segflow.models import GammaGammaModel, btyd_summary, compress
    from segflow.project import Project

    with Project.open(tmp_path / "proj") as again:
        table = again.store.table("transactions")
        with pytest.warns(UserWarning):
            pairs = compress(btyd_summary(table, calibration_end="2024-01-01", time_unit="W"),
                             ("x", "monetary_value"))
            spend = GammaGammaModel().fit(pairs)
    assert scores.loc["neg1", "expected_spend"] == pytest.approx(spend.population_mean_spend(), rel=1e-9)
    # CLV = spend x discounted purchases: below the undiscounted product, above 90 % of it
    # (52 weeks at 10 % a year)
    undiscounted = scores.loc["neg2", "expected_spend"] * scores.loc["neg2", "expected_purchases"]
    assert 0.9 * undiscounted < scores.loc["neg2", "clv"] < undiscounted


def test_a_stage_that_cannot_run_says_so_everywhere(tmp_path) -> None:
    from typer.testing import CliRunner

    from segflow.cli import app

    # every customer buys on one day only: no count model can be fitted
    rows = [(f"u{i}", str(dt.date(2023, 1, 1) + dt.timedelta(days=i)), 10.0) for i in range(120)]
    _project(tmp_path, rows).close()
    result = CliRunner().invoke(app, ["run", "-p", str(tmp_path / "proj")])
    assert result.exit_code == 0, result.output
    assert "CLV stage did not run" in result.output and "no repeat buyers" in result.output
    from segflow.project import Project

    with Project.open(tmp_path / "proj") as project:
        status, message = project.store.raw.execute(
            "SELECT status, message FROM runs WHERE command = 'run'"
        ).fetchone()
        assert status == "ok" and "CLV stage did not run" in message
        html = project.report(tmp_path / "report.html").read_text()
    assert "CLV stage did not run" in html
