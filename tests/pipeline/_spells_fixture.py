"""Random per-snapshot assignment histories written as change rows (shared by test folders)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from segflow.store import Store
from segflow.store._spells import write_spells

COLS = ["scheme", "scheme_version", "snapshot_date", "customer_id", "segment", "segment_rank"]


def _random_history(seed: int, n_customers: int = 40, n_snaps: int = 9) -> pd.DataFrame:
    """Per-snapshot assignments with entries, exits, returns and segment changes."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2024 + m // 12, m % 12 + 1, 1) for m in range(n_snaps)]
    rows = []
    for c in range(n_customers):
        segment = rng.integers(0, 3)
        for d in days:
            if rng.random() < 0.15:  # absent at this snapshot
                continue
            if rng.random() < 0.3:
                segment = rng.integers(0, 3)
            rows.append(("s", "1", d, f"c{c:02d}", f"g{segment}", int(segment) + 1))
    return pd.DataFrame(rows, columns=COLS)


def _write(store: Store, frame: pd.DataFrame, days: list[dt.date], run: str,
           expected_rows: int | None = None) -> None:
    part = frame[frame["snapshot_date"].isin(days)][COLS[2:]]
    with store.transaction() as con:
        con.register("_rows", pa.Table.from_pandas(part, preserve_index=False))
        write_spells(con, scheme="s", scheme_version="1", source="_rows", snapshots=days,
                     run_id=run, expected_rows=expected_rows)
        con.unregister("_rows")


