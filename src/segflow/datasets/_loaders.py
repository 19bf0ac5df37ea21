"""Loaders of real public datasets used to validate customer-base models.

- The CDNOW 1/10 sample (Fader, Hardie & Lee 2005): 6,919 purchase records of 2,357
  customers who first bought in 1997 Q1, observed to 1998-06-30.
- The donations BG/BB panel (Fader, Hardie & Shang 2010): 11,104 donors over 6 annual
  opportunities, compressed to (frequency, recency, periods, weights).

The files are not shipped with segflow. By default they are looked up in
``../shared/data/cdnow/`` next to the source checkout; pass ``path`` otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segflow.errors import InputError, SegflowError

_REPO = Path(__file__).resolve().parents[3]
DEFAULT_DIR = _REPO.parent / "shared" / "data" / "cdnow"

_WHERE = (
    "The CDNOW sample is public: Bruce Hardie's site (brucehardie.com/datasets, "
    "'CDNOW dataset') ships CDNOW_sample.txt; the donations panel is in the data of "
    "Fader, Hardie & Shang (2010), also on that site. Pass path=... to the loader."
)


def _resolve(path: str | Path | None, name: str) -> Path:
    file = Path(path) if path is not None else DEFAULT_DIR / name
    if file.is_dir():
        file = file / name
    if not file.exists():
        raise SegflowError(f"{name} not found at {file}. {_WHERE}")
    return file


def load_cdnow(path: str | Path | None = None) -> pd.DataFrame:
    """Read the CDNOW 1/10 sample (whitespace separated, no header).

    Parameters
    ----------
    path : str or Path, optional
        The file ``CDNOW_sample.txt`` (or its folder). Default:
        ``../shared/data/cdnow/CDNOW_sample.txt`` relative to the repository.

    Returns
    -------
    pandas.DataFrame
        One row per purchase record, file order: ``customer_id`` (str, the master id as
        written, e.g. ``"00004"``), ``date`` (datetime64, day precision), ``cds`` (int, number
        of CDs bought) and ``amount`` (float, US dollars). Several records of one customer on
        one day are kept as separate rows.

    Raises
    ------
    SegflowError
        The file is missing (the message says where to get it).
    InputError
        A line does not have 5 fields or holds a bad date or number (file, row and column named).
    """
    file = _resolve(path, "CDNOW_sample.txt")
    names = ["master_id", "sample_id", "yyyymmdd", "number_of_cds", "dollars"]
    try:
        raw = pd.read_csv(file, sep=r"\s+", header=None, dtype=str, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"not the CDNOW format ({exc})", file=str(file)) from None
    if raw.shape[1] != 5:
        raise InputError(
            f"expected 5 whitespace-separated fields ({' '.join(names)}), got {raw.shape[1]}",
            file=str(file),
        )
    raw.columns = names
    date = pd.to_datetime(raw["yyyymmdd"], format="%Y%m%d", errors="coerce")
    cds = pd.to_numeric(raw["number_of_cds"], errors="coerce")
    amount = pd.to_numeric(raw["dollars"], errors="coerce")
    for column, values, expected in (
        ("master_id", raw["master_id"].where(raw["master_id"].notna(), None), "an id"),
        ("yyyymmdd", date, "a date as yyyymmdd"),
        ("number_of_cds", cds, "a whole number"),
        ("dollars", amount, "a number"),
    ):
        bad = np.flatnonzero(pd.isna(values).to_numpy())
        if len(bad):
            row = int(bad[0])
            raise InputError(
                f"expected {expected}, got {raw.iloc[row][column]!r}",
                file=str(file), row=row + 1, column=column,
            )
    return pd.DataFrame(
        {
            "customer_id": raw["master_id"].astype(str),
            "date": date,
            "cds": cds.astype(np.int64),
            "amount": amount.astype(np.float64),
        }
    )


def load_donations_bgbb(path: str | Path | None = None) -> pd.DataFrame:
    """Read the donations panel of Fader, Hardie & Shang (2010) for the BG/BB model.

    Parameters
    ----------
    path : str or Path, optional
        The file ``donations_bgbb.csv`` (or its folder). Default:
        ``../shared/data/cdnow/donations_bgbb.csv`` relative to the repository.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency`` (repeat transactions x), ``recency`` (t_x, the period of the
        last transaction, 0 if none), ``periods`` (n, the transaction opportunities) and
        ``weights`` (number of donors with that pattern); all int64.
    """
    file = _resolve(path, "donations_bgbb.csv")
    cols = ["frequency", "recency", "periods", "weights"]
    try:
        raw = pd.read_csv(file, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"not a CSV file ({exc})", file=str(file)) from None
    missing = [c for c in cols if c not in raw.columns]
    if missing:
        raise InputError(
            f"expected columns {', '.join(cols)}; missing {', '.join(missing)}", file=str(file)
        )
    out = {}
    for c in cols:
        values = pd.to_numeric(raw[c], errors="coerce")
        bad = np.flatnonzero((values.isna() | (values < 0) | (values % 1 != 0)).to_numpy())
        if len(bad):
            row = int(bad[0])
            raise InputError(
                f"expected a non-negative whole number, got {raw.iloc[row][c]!r}",
                file=str(file), row=row + 1, column=c,
            )
        out[c] = values.astype(np.int64)
    frame = pd.DataFrame(out)
    bad = np.flatnonzero((frame["frequency"] > frame["recency"]) | (frame["recency"] > frame["periods"]))
    if len(bad):
        row = int(bad[0])
        raise InputError(
            "expected frequency <= recency <= periods", file=str(file), row=row + 1,
            column="frequency",
        )
    return frame
