"""The one contract every result object follows.

Results are rich by default (they draw themselves) but never a trap: ``to_pandas()`` is the
universal escape hatch. The report, the API and the CLI all serialise these objects.
Plotly is imported inside ``figure()`` so ``import segflow`` stays light.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go
    import pyarrow as pa


@runtime_checkable
class Result(Protocol):
    def to_pandas(self) -> pd.DataFrame: ...

    def to_arrow(self) -> pa.Table: ...

    def to_json(self) -> str: ...

    def figure(self) -> go.Figure: ...


class TableResult:
    """Base class for results backed by one pandas table: implements to_arrow/to_json."""

    def to_pandas(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_arrow(self) -> pa.Table:
        import pyarrow as pa

        return pa.Table.from_pandas(self.to_pandas(), preserve_index=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"data": [records...], "count": n}`` plus subclass extras."""
        records = json_records(self.to_pandas())
        return {"data": records, "count": len(records)}

    def to_json(self) -> str:
        return json.dumps(jsonable(self.to_dict()), allow_nan=False)

    def _repr_html_(self) -> str:
        """Notebook view: the one-line repr as a caption over the first 20 rows of the table."""
        import html

        frame = self.to_pandas()
        more = f" (first 20 of {len(frame):,} rows)" if len(frame) > 20 else ""
        table = frame.head(20).to_html(index=False, border=0, float_format=lambda v: f"{v:,.4g}")
        return f"<p><b>{html.escape(repr(self))}</b>{html.escape(more)}</p>{table}"


#: Significant digits of a float in JSON: the most that every decimal number keeps through a
#: double (DBL_DIG). Parameters, p-values (1.5e-13) and money keep their value; the noise
#: of floating-point summation in the 16th-17th digit (0.1 + 0.2 = 0.30000000000000004) goes.
FLOAT_DIGITS = 15


def json_float(value: float) -> float | None:
    """A float for JSON: NaN and infinities become null, otherwise 15 significant digits."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{FLOAT_DIGITS}g}")


def json_date(value: dt.date | dt.datetime) -> str:
    """One ISO format: a date as YYYY-MM-DD, a point in time as YYYY-MM-DDTHH:MM:SS[.ffffff]."""
    return value.isoformat()


def jsonable(value: Any) -> Any:
    """Convert a payload to JSON-ready Python values (recursively).

    Floats keep full precision (see :data:`FLOAT_DIGITS`; never the 10 decimals of
    ``DataFrame.to_json``), NaN becomes null, dates follow :func:`json_date`, NumPy and
    pandas scalars become Python ones, DataFrames become records.
    """
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NaT or value is pd.NA or isinstance(value, bool | str):
        return None if value is pd.NaT or value is pd.NA else value
    if isinstance(value, int | np.integer) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, float | np.floating):
        return json_float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return json_date(value.to_pydatetime())
    if isinstance(value, dt.date | dt.datetime):
        return json_date(value)
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else jsonable(pd.Timestamp(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, pd.DataFrame):
        return json_records(value)
    if isinstance(value, pd.Series):
        return jsonable(value.to_dict())
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON-ready records, at full precision (unlike ``to_json``'s 10 decimals).

    A datetime column whose values all fall on midnight holds calendar dates and is written
    as YYYY-MM-DD; other datetime columns as YYYY-MM-DDTHH:MM:SS.
    """
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_datetime64_any_dtype(series):
            values = series.dropna()
            if len(values) and (values == values.dt.normalize()).all():
                out[col] = series.dt.date.astype(object).where(series.notna(), None)
    return [
        {str(k): jsonable(v) for k, v in row.items()}
        for row in out.astype(object).to_dict(orient="records")
    ]
