"""Fixtures of the BTYD tests: the CDNOW sample as a transaction table and its summary."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pytest


def read_cdnow(path: Path) -> pd.DataFrame:
    """CDNOW_sample.txt: whitespace-separated, no header (see the data README)."""
    frame = pd.read_csv(
        path / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_id", "sample_id", "date", "cds", "dollars"],
        dtype={"customer_id": str, "date": str},
    )
    frame["ts"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="session")
def cdnow_frame(cdnow_dir: Path) -> pd.DataFrame:
    return read_cdnow(cdnow_dir)


@pytest.fixture(scope="session")
def cdnow_summary(cdnow_frame: pd.DataFrame) -> pd.DataFrame:
    """Per-customer summary, weekly, calibration to 1997-09-30, holdout to 1998-06-30."""
    import warnings

    from segflow.models import btyd_summary

    table = ibis.memtable(cdnow_frame[["customer_id", "ts", "dollars"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = btyd_summary(
            table,
            calibration_end="1997-10-01",
            observation_end="1998-07-01",
            time_unit="W",
            amount_col="dollars",
        )
        return summary.execute()
