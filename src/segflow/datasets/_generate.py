"""``generate_demo``: write the demo customer base (data files and ground truth) in chunks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from segflow.datasets import _simulate as sim
from segflow.datasets import _spec as S
from segflow.datasets import _tables as T
from segflow.datasets._defects import Context, Injected, inject, to_csv_table
from segflow.errors import SegflowError

if TYPE_CHECKING:
    import pandas as pd

#: Customers simulated per chunk. Fixed: the data for a seed must not depend on memory.
CHUNK_CUSTOMERS = 25_000
#: Share of transaction rows whose CSV ``order_date`` is written day-first (``%d/%m/%Y %H:%M``,
#: whole minutes); the rest use ``%Y-%m-%d %H:%M:%S``.
DAYFIRST_SHARE = 0.08
#: Formats that appear in ``transactions.csv`` ``order_date`` (besides the unparseable defects).
TRANSACTION_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M")

TABLES = ("customers", "transactions", "events", "campaign_exposures", "survey_responses")
#: The ground-truth files of ``truth/``, by name.
TRUTH_FILES = {"latent_groups": "latent_groups.parquet", "transition_matrix": "transition_matrix.csv",
               "groups": "groups.csv", "campaign_effects": "campaign_effects.csv",
               "campaign_transitions": "campaign_transitions.csv", "defects": "defects.csv"}


def written_files() -> frozenset[str]:
    """Every path :func:`generate_demo` may write in its folder, relative (``/``-separated),
    in any format: ``README.md``, ``<table>.csv`` and ``<table>.parquet``, ``truth/...``.
    What a demo interrupted before its project file may have left (and only that is removed
    by the next demo, :func:`segflow.cli._core._fresh_demo_folder`)."""
    tables = {f"{t}.{f}" for t in TABLES for f in ("csv", "parquet")}
    return frozenset({"README.md", *tables, *(f"truth/{n}" for n in TRUTH_FILES.values())})
DATE_COLUMN = {
    "customers": "created_at",
    "transactions": "order_date",
    "events": "ts",
    "campaign_exposures": "ts",
    "survey_responses": "ts",
}

Progress = Callable[[int, int], None]


@dataclass
class DemoDataset:
    """What :func:`generate_demo` wrote: file paths and counts.

    Attributes
    ----------
    out_dir : Path
        The output folder.
    files : dict
        ``files[table][format]`` is the path of a data file (``format`` is ``csv`` or
        ``parquet``).
    truth : dict
        Paths of the ground-truth files (``latent_groups``, ``transition_matrix``,
        ``defects``, ``campaign_effects``, ``campaign_transitions``, ``groups``).
    rows : dict
        Data rows written per table (the same in both formats; defects included).
    defects : dict
        Injected defects per ``"table/defect"`` (counted once, over the CSV file when written).
    customers, months, seed : int
        The arguments used.
    start, end : datetime.date
        First day of the data, and the first day after it (``ts < end`` for clean rows).
    seconds : float
        Wall time of the generation, in seconds.
    """

    out_dir: Path
    files: dict[str, dict[str, Path]]
    truth: dict[str, Path]
    rows: dict[str, int]
    defects: dict[str, int]
    customers: int
    months: int
    seed: int
    start: dt.date
    end: dt.date
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "out_dir": str(self.out_dir),
            "customers": self.customers,
            "months": self.months,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": dict(self.rows),
            "defects": dict(self.defects),
            "files": {t: {f: str(p) for f, p in fs.items()} for t, fs in self.files.items()},
            "truth": {k: str(p) for k, p in self.truth.items()},
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_pandas(self) -> pd.DataFrame:
        """One row per table: rows written, injected defects, and the file paths."""
        import pandas as pd

        return pd.DataFrame(
            {
                "table": list(self.rows),
                "rows": list(self.rows.values()),
                "defects": [
                    sum(n for k, n in self.defects.items() if k.split("/")[0] == t)
                    for t in self.rows
                ],
                **{
                    fmt: [str(self.files[t].get(fmt, "")) for t in self.rows]
                    for fmt in ("csv", "parquet")
                },
            }
        )

    def __repr__(self) -> str:
        return (
            f"DemoDataset({self.customers:,} customers, {self.rows.get('transactions', 0):,} "
            f"transactions, {self.months} months from {self.start}, seed={self.seed}, "
            f"out_dir={str(self.out_dir)!r})"
        )


def _check_args(customers: int, months: int, start: str, formats: Iterable[str]) -> tuple[str, ...]:
    if not isinstance(customers, int | np.integer) or customers < 1:
        raise SegflowError(f"customers must be a positive integer, got {customers!r}")
    if not isinstance(months, int | np.integer) or not 3 <= months <= 240:
        raise SegflowError(f"months must be an integer between 3 and 240, got {months!r}")
    try:
        first = dt.date.fromisoformat(str(start))
    except ValueError:
        raise SegflowError(f"start must be a date like 2024-01-01, got {start!r}") from None
    if first.day != 1:
        raise SegflowError(f"start must be the first day of a month, got {start!r}")
    formats = tuple(dict.fromkeys(formats))
    unknown = set(formats) - {"csv", "parquet"}
    if unknown or not formats:
        raise SegflowError(f"formats must be a non-empty subset of csv, parquet; got {formats!r}")
    return formats


def generate_demo(
    out_dir: str | Path,
    *,
    customers: int = 10_000,
    months: int = 24,
    seed: int = 0,
    start: str = "2024-01-01",
    formats: Iterable[str] = ("csv", "parquet"),
    progress: Progress | None = None,
) -> DemoDataset:
    """Generate a realistic, multi-source demo customer base with its ground truth.

    Customers belong to latent behavioural groups (``champions``, ``regulars``,
    ``occasional``, ``browsers``, ``seasonal``, ``lapsing``, ``churned``) that migrate month to
    month through the known matrix :data:`segflow.datasets.TRANSITION_MATRIX`; order rates,
    spend and browsing depend on the group and the calendar month. Small, recorded defects
    are injected. See ``docs/demo-data.md`` for the file contract.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created if missing; existing demo files are overwritten).
    customers : int, default 10_000
        Number of customers (about 20 transaction rows each over 24 months).
    months : int, default 24
        Length of the data in calendar months (3..240).
    seed : int, default 0
        Random seed; the same seed and arguments give identical files.
    start : str, default "2024-01-01"
        First day of the data; must be the first of a month. Data end = start + months.
    formats : iterable of {"csv", "parquet"}
        File formats to write; the same rows in the same order in each.
    progress : callable, optional
        Called as ``progress(customers_done, customers_total)`` after each chunk.

    Returns
    -------
    DemoDataset
        Paths of the files written and row counts.

    Examples
    --------
    >>> import tempfile
    >>> from segflow.datasets import generate_demo
    >>> ds = generate_demo(tempfile.mkdtemp(), customers=200, months=6, seed=1)
    >>> sorted(ds.files)[:2]
    ['campaign_exposures', 'customers']
    """
    import time

    t0 = time.perf_counter()
    formats = _check_args(customers, months, start, formats)
    S.check_spec()
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    cal = sim.Calendar.build(start, months)
    width = max(6, len(str(customers)))
    ctx = Context(end=cal.end, total_customers=int(customers), width=width)
    writers = _Writers(out, formats)
    truth = _Truth(out, months)
    children = np.random.SeedSequence(seed).spawn((customers + CHUNK_CUSTOMERS - 1) // CHUNK_CUSTOMERS)
    off = T.Offsets(customer=0, order=0, session=0, width=width)
    try:
        for child in children:
            n = min(CHUNK_CUSTOMERS, customers - off.customer)
            off = dataclasses.replace(off, size=n)
            off = _chunk(np.random.default_rng(child), n, cal, off, ctx, writers, truth, start)
            if progress is not None:
                progress(off.customer, customers)
    finally:
        writers.close()
    truth.finish(cal, start)
    _write_readme(out, formats)
    end = (np.datetime64(start, "M") + months).astype("datetime64[D]").astype(dt.date)
    return DemoDataset(
        out_dir=out, files=writers.paths, truth=truth.paths, rows=writers.rows,
        defects=writers.defect_counts, customers=int(customers), months=int(months),
        seed=int(seed), start=dt.date.fromisoformat(start), end=end,
        seconds=time.perf_counter() - t0,
    )


def _chunk(
    rng: np.random.Generator, n: int, cal: sim.Calendar, off: T.Offsets, ctx: Context,
    writers: _Writers, truth: _Truth, start: str,
) -> T.Offsets:
    cust = sim.simulate_customers(rng, n, cal)
    arms = sim.draw_arms(rng, cust["acq"], cal.months)
    groups = sim.simulate_paths(rng, cust["acq"], cust["entry"], cal.months, arms)
    exposures, mult = sim.simulate_campaigns(rng, arms, groups, cal)
    orders = sim.simulate_orders(rng, cust, groups, mult, cal)
    dayfirst = rng.random(len(orders["ts"])) < DAYFIRST_SHARE
    orders["ts"] = np.where(dayfirst, orders["ts"] - orders["ts"] % 60, orders["ts"])
    sessions = sim.simulate_sessions(rng, cust, groups, orders, cal)
    surveys = sim.simulate_surveys(rng, cust, groups, cal)
    # products from a stream of their own: the other tables are as before products existed
    product_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
    orders["product"] = sim.assign_products(product_rng, orders, cust)

    tx = T.transactions_table(orders, off).append_column("_dayfirst", pa.array(dayfirst))
    tables = {
        "customers": (T.customers_table(cust, off), None),
        "transactions": (tx, ~orders["is_return"]),
        "events": (T.events_table(sessions, off), None),
        "campaign_exposures": (T.exposures_table(exposures, off), None),
        "survey_responses": (T.surveys_table(surveys, off), None),
    }
    for name, (table, eligible) in tables.items():
        writers.write(rng, name, inject(rng, table, name, ctx, eligible))
    truth.add(groups, off, start, arms, cust)
    return T.Offsets(
        customer=off.customer + n,
        order=off.order + int(orders["seq"].max(initial=-1)) + 1,
        session=off.session + int(sessions["session"].max(initial=-1)) + 1,
        width=off.width,
    )


class _Writers:
    """One Parquet and one CSV writer per table; rows of each chunk are appended."""

    def __init__(self, out: Path, formats: tuple[str, ...]) -> None:
        self.out, self.formats = out, formats
        self.paths: dict[str, dict[str, Path]] = {
            t: {f: out / f"{t}.{f}" for f in formats} for t in TABLES
        }
        self.rows = dict.fromkeys(TABLES, 0)
        self.defect_counts: dict[str, int] = {}
        self._pq: dict[str, pq.ParquetWriter] = {}
        self._csv: dict[str, tuple[Any, pcsv.CSVWriter]] = {}
        self._defects = (out / "truth" / TRUTH_FILES["defects"]).open("w", encoding="utf-8", newline="")
        self._defects.write("file,row_number,column,defect,detail\n")

    def write(self, rng: np.random.Generator, name: str, inj: Injected) -> None:
        table = inj.table
        if "parquet" in self.formats:
            typed = _parquet_types(table.drop_columns([c for c in table.column_names if c[0] == "_"]))
            if name not in self._pq:
                self._pq[name] = pq.ParquetWriter(self.paths[name]["parquet"], typed.schema)
            self._pq[name].write_table(typed)
        if "csv" in self.formats:
            text = to_csv_table(rng, inj, DATE_COLUMN[name] if name == "transactions" else None)
            if name not in self._csv:
                sink = self.paths[name]["csv"].open("wb")
                sink.write((",".join(text.column_names) + "\n").encode())
                opts = pcsv.WriteOptions(include_header=False, quoting_style="none")
                self._csv[name] = (sink, pcsv.CSVWriter(sink, text.schema, write_options=opts))
            self._csv[name][1].write_table(text)
        self._record(name, inj)
        self.rows[name] += table.num_rows

    def _record(self, name: str, inj: Injected) -> None:
        base = self.rows[name] + 1
        lines = []
        for fmt in self.formats:
            for p, col, kind, ref, csv_only in zip(
                inj.pos, inj.column, inj.defect, inj.ref, inj.csv_only, strict=True
            ):
                if csv_only and fmt != "csv":
                    continue
                detail = f"copy of row {ref + base}" if ref >= 0 else ""
                lines.append(f"{name}.{fmt},{p + base},{col},{kind},{detail}\n")
        self._defects.write("".join(lines))
        counted = "csv" if "csv" in self.formats else self.formats[0]
        for kind, csv_only in zip(inj.defect, inj.csv_only, strict=True):
            if csv_only and counted != "csv":
                continue
            key = f"{name}/{kind}"
            self.defect_counts[key] = self.defect_counts.get(key, 0) + 1

    def close(self) -> None:
        for w in self._pq.values():
            w.close()
        for sink, w in self._csv.values():
            w.close()
            sink.close()
        self._defects.close()


def _parquet_types(table: pa.Table) -> pa.Table:
    """Timestamps as microseconds (Parquet has no second unit)."""
    fields = [
        pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


class _Truth:
    """Latent groups per customer and month, campaign arms by group, and the constant tables."""

    def __init__(self, out: Path, months: int) -> None:
        self.dir = out / "truth"
        self.paths = {name: self.dir / file for name, file in TRUTH_FILES.items()}
        self._writer: pq.ParquetWriter | None = None
        k = len(S.GROUPS)
        self.arm_counts = np.zeros((len(S.CAMPAIGNS), 2, k), dtype=np.int64)

    def add(
        self, groups: np.ndarray, off: T.Offsets, start: str,
        arms: list[dict[str, np.ndarray]], cust: dict[str, np.ndarray],
    ) -> None:
        table = T.latent_table(groups, off, start)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.paths["latent_groups"], table.schema)
        self._writer.write_table(table)
        k = len(S.GROUPS)
        for c, arm in enumerate(arms):
            for a, mask in enumerate((arm["treated"], ~arm["treated"])):
                self.arm_counts[c, a] += np.bincount(arm["group"][mask], minlength=k)

    def finish(self, cal: sim.Calendar, start: str) -> None:
        if self._writer is not None:
            self._writer.close()
        _write_matrix(self.paths["transition_matrix"])
        _write_groups(self.paths["groups"])
        _write_effects(self.paths["campaign_effects"], cal, self.arm_counts)
        _write_campaign_transitions(self.paths["campaign_transitions"], cal)


def _write_matrix(path: Path) -> None:
    head = "from_group," + ",".join(S.GROUPS) + "\n"
    body = "".join(
        f"{g}," + ",".join(f"{p:.4f}" for p in row) + "\n"
        for g, row in zip(S.GROUPS, S.TRANSITION_MATRIX, strict=True)
    )
    path.write_text(head + body, encoding="utf-8")


def _write_groups(path: Path) -> None:
    cols = {
        "group": list(S.GROUPS),
        "orders_per_month": S.ORDER_RATE,
        "spend_per_order": S.SPEND_MEAN,
        "browse_sessions_per_month": S.BROWSE_RATE,
        "cart_add_prob": S.CART_ADD_PROB,
        "entry_share_existing": S.ENTRY_EXISTING,
        "entry_share_new": S.ENTRY_NEW,
    }
    _write_plain_csv(pa.table(cols), path)


def _write_effects(path: Path, cal: sim.Calendar, counts: np.ndarray) -> None:
    """True effect of each campaign per latent group (in the calendar month of the send)."""
    from segflow.datasets._simulate import campaign_send_months

    rows = []
    for c, (send_m, camp) in enumerate(zip(campaign_send_months(cal.months), S.CAMPAIGNS, strict=True)):
        cid, effects = camp.campaign_id, camp.rate_multiplier
        season = S.SEASONALITY[cal.cal_month[send_m] - 1]
        for g, name in enumerate(S.GROUPS):
            base = S.ORDER_RATE[g] * season
            if name == "seasonal" and cal.cal_month[send_m] in S.SEASONAL_MONTHS:
                base = S.SEASONAL_PEAK_RATE * season
            mult = effects.get(name, 1.0)
            rows.append(
                {
                    "campaign_id": cid,
                    "send_month": _month(cal, send_m),
                    "window_start": _month(cal, send_m),
                    "window_end": _month(cal, send_m + 1),
                    "group": name,
                    "rate_multiplier": mult,
                    "orders_control": round(float(base), 6),
                    "orders_treatment": round(float(base * mult), 6),
                    "purchase_prob_control": round(float(1 - np.exp(-base)), 6),
                    "purchase_prob_treatment": round(float(1 - np.exp(-base * mult)), 6),
                    "n_treatment": int(counts[c, 0, g]),
                    "n_control": int(counts[c, 1, g]),
                    "migration_changed": name in camp.migration,
                }
            )
    _write_plain_csv(pa.Table.from_pylist(rows), path)


def _write_campaign_transitions(path: Path, cal: sim.Calendar) -> None:
    """True move from the send month to the next, per campaign, arm and latent group."""
    from segflow.datasets._simulate import campaign_send_months

    rows = []
    for send_m, camp in zip(campaign_send_months(cal.months), S.CAMPAIGNS, strict=True):
        for arm in ("treatment", "control"):
            for g, name in enumerate(S.GROUPS):
                probs = S.TRANSITION_MATRIX[g]
                if arm == "treatment" and name in camp.migration:
                    probs = np.asarray(camp.migration[name])
                rows.append(
                    {
                        "campaign_id": camp.campaign_id,
                        "arm": arm,
                        "from_month": _month(cal, send_m),
                        "to_month": _month(cal, send_m + 1) if send_m + 1 < cal.months else "",
                        "from_group": name,
                        **{to: round(float(p), 6) for to, p in zip(S.GROUPS, probs, strict=True)},
                    }
                )
    _write_plain_csv(pa.Table.from_pylist(rows), path)


def _write_plain_csv(table: pa.Table, path: Path) -> None:
    """CSV with an unquoted header and unquoted values (the values hold no commas)."""
    with path.open("wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        opts = pcsv.WriteOptions(include_header=False, quoting_style="none")
        pcsv.write_csv(table, sink, opts)


def _month(cal: sim.Calendar, m: int) -> str:
    return str(np.datetime64(int(cal.start[m]), "s").astype("datetime64[D]"))


def _write_readme(out: Path, formats: tuple[str, ...]) -> None:
    from segflow.datasets._docs import readme_text

    (out / "README.md").write_text(readme_text(formats), encoding="utf-8")
