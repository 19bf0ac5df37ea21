"""The one contract every result object follows.

Results are rich by default (they draw themselves) but never a trap: ``to_pandas()`` is the
universal escape hatch. The report, the API and the CLI all serialise these objects.
Plotly is imported inside ``figure()`` so ``import segflow`` stays light.
"""

from __future__ import annotations

import json
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
        frame = self.to_pandas()
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return {"data": records, "count": len(records)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    def _repr_html_(self) -> str:
        """Notebook view: the one-line repr as a caption over the first 20 rows of the table."""
        import html

        frame = self.to_pandas()
        more = f" (first 20 of {len(frame):,} rows)" if len(frame) > 20 else ""
        table = frame.head(20).to_html(index=False, border=0, float_format=lambda v: f"{v:,.4g}")
        return f"<p><b>{html.escape(repr(self))}</b>{html.escape(more)}</p>{table}"
