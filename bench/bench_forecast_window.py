"""Accuracy of the segment-size forecast's options: a rolling-origin backtest.

    nice python bench/bench_forecast_window.py                  # 3 demo projects + CDNOW
    nice python bench/bench_forecast_window.py --seeds 1        # a quicker run

Not a speed benchmark: it measures how far :func:`segflow.migration.segment_forecast` lands
from the sizes that followed, for the choices its defaults make (docs/migration.md, "The
segment-size forecast"). For every origin ``t`` with a year of history before it (and
``horizon`` snapshots after it), the forecast is fitted on the pairs up to ``s_t`` only
(``end=s_t``) and compared with the actual sizes at ``s_{t+1} .. s_{t+h}``:
``WAPE_h = sum |forecast - actual| / sum actual`` over origins, schemes and segments, and the
bias of the total, ``(sum forecast - sum actual) / sum actual``.

Data: demo projects (``segflow.datasets.generate_demo``: 2,000 customers, 30 months, seeds
1..3; schemes rfm, lifecycle, value_tiers; ingested and run), and the CDNOW sample's recency
states (30-day periods, 18 of them, states 1-6; a cohort acquired in the first quarter of
1997: its customers enter in the first three periods and none later; only the origins 12 and
13 have a year before them). Writes ``bench/results/forecast_window.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "forecast_window.md"
SCHEMES = ("rfm", "lifecycle", "value_tiers")


def variants(dates: list, t: int) -> dict[str, dict]:
    """The options compared at origin ``t`` (the default first)."""
    return {
        "last year (default)": {"end": dates[t]},
        "every pair": {"end": dates[t], "start": "first"},
        "last 6 pairs": {"end": dates[t], "start": dates[t - 6]},
        "half-life 3": {"end": dates[t], "start": "first", "half_life": 3},
        "half-life 6": {"end": dates[t], "start": "first", "half_life": 6},
        "last year, no arrivals": {"end": dates[t], "arrivals": "none"},
    }


def backtest(pooled, horizon: int, first_origin: int) -> pd.DataFrame:  # noqa: ANN001
    from segflow.migration import segment_forecast

    cells = pooled.pair_cells
    dates = sorted(set(cells["from_date"]) | set(cells["to_date"]))
    sizes = cells[cells["to_segment"] != "(gone)"].groupby(["to_date", "to_segment"])["customers"].sum()
    rows = []
    for t in range(first_origin, len(dates) - horizon):  # a few origins
        for name, options in variants(dates, t).items():
            fc = segment_forecast(pooled, periods=horizon, **options).to_pandas()
            for h in range(1, horizon + 1):
                got = fc[fc["period"] == h].set_index("segment")["expected_customers"]
                actual = sizes.loc[dates[t + h]]
                index = got.index.union(actual.index)
                got, actual = got.reindex(index).fillna(0.0), actual.reindex(index).fillna(0.0)
                rows.append({"variant": name, "h": h, "abs_err": float((got - actual).abs().sum()),
                             "actual": float(actual.sum()), "total_err": float(got.sum() - actual.sum())})
    return pd.DataFrame(rows)


def demo(seed: int, work: Path) -> pd.DataFrame:
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.migration import pooled_transition_matrix
    from segflow.project import Project

    out = work / f"demo{seed}"
    data = generate_demo(out / "data", customers=2000, months=30, seed=seed)
    with Project.init(out, toml_text=demo_project_toml("data", max_date=data.end), overwrite=True) as project:
        project.ingest()
        project.run()
    frames = []
    with Project.open(out, read_only=True) as project:
        for scheme in SCHEMES:
            pooled = pooled_transition_matrix(project.store, scheme=scheme)
            frames.append(backtest(pooled, 6, 13).assign(scheme=scheme, seed=seed))
    return pd.concat(frames, ignore_index=True)


def cdnow() -> pd.DataFrame:
    import ibis

    from segflow.datasets import load_cdnow
    from segflow.migration import pooled_transition_matrix, recency_states

    raw = load_cdnow()
    tx = pd.DataFrame({"customer_id": raw["customer_id"], "ts": raw["date"], "amount": raw["amount"]})
    con = ibis.duckdb.connect()
    states = recency_states(con.create_table("tx", tx), "1997-01-01", period_days=30, n_periods=18, cap=6)
    return backtest(pooled_transition_matrix(states, scheme="recency"), 4, 12)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    g = frame.groupby(["variant", "h"], sort=False)[["abs_err", "actual", "total_err"]].sum()
    wape = (g["abs_err"] / g["actual"]).unstack("h")
    bias = (g["total_err"] / g["actual"]).unstack("h")
    wape.columns = [f"WAPE h={h}" for h in wape.columns]
    return wape.join(bias.iloc[:, [-1]].rename(columns=lambda h: f"total bias h={h}")).round(3)


def markdown(frame: pd.DataFrame) -> str:
    """A small table as markdown (index first)."""
    head = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([str(i), *(f"{v:.3f}" for v in row)]) + " |"
              for i, row in zip(frame.index, frame.to_numpy(), strict=True)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        frames = [demo(seed, Path(tmp)) for seed in range(1, args.seeds + 1)]
    demos = pd.concat(frames, ignore_index=True)
    cases = len(demos) // (6 * len(variants([None] * 99, 50)))
    text = ["## Forecast window: backtest of the defaults", "",
            "`bench/bench_forecast_window.py`: rolling-origin backtest of "
            "`segflow.migration.segment_forecast` (docs/migration.md). WAPE = sum of |forecast - "
            "actual| over segments / customers; total bias = (forecast total - actual total) / actual.", "",
            f"Demo projects (2,000 customers, 30 months, seeds 1..{args.seeds}; rfm, lifecycle, "
            f"value_tiers; {cases} origin x scheme x seed cases, origins 13..23):", "",
            markdown(summary(demos)), ""]
    try:
        text += ["CDNOW recency states (30-day periods; a cohort whose customers all enter in the "
                 "first three periods, so every arrival the forecasts add is wrong; origins 12 and 13 "
                 "only):", "", markdown(summary(cdnow())), ""]
    except Exception as exc:  # noqa: BLE001 - the shared data may be absent: say so
        text += [f"CDNOW skipped: {exc}", ""]
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
