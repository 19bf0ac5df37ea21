"""Small cells: value figures of segments and migration cells of few customers, withheld
from viewers.

A viewer (the role without customer-level access) reads aggregates only; but the 12-month
revenue of a segment of one customer, the CLV moved by a migration cell of two, or the
mean and median features of a profile of one are that customer's own figures. Below
``[server] min_cell_customers`` customers (default 5; :class:`segflow.config.ServingSettings`)
a row's value figures are null for a viewer and its ``withheld`` column says why; counts
(customers, sizes, shares of customers and their intervals, changes in customers) and ranks
stay exact, as they say nothing of what a customer bought. Analysts and admins, who may read
the customers themselves, see every figure, without the ``withheld`` column.

Applied to the JSON API and the dashboard pages that serve aggregates to viewers (segment
sizes, the transition matrix, segment profiles, CLV moved); the HTML report (``segflow
report``), a file its maker hands out, is left as it is (docs/report.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

#: The column a viewer's rows gain: null, or why the row's value figures are null.
WITHHELD = "withheld"
#: Numeric columns that are counts of customers (or follow from them, or order the rows):
#: never withheld.
COUNT_COLUMNS = frozenset({"customers", "size", "share", "share_lower", "share_upper",
                           "change_customers", "previous_customers", "segment_rank",
                           "from_rank", "to_rank"})


def reason(min_customers: int) -> str:
    """The ``withheld`` text of a small row."""
    return (f"fewer than {min_customers} customers: value figures withheld from viewers "
            "([server] min_cell_customers)")


def withhold_small_cells(frame: pd.DataFrame, role: str, min_customers: int, *,
                         count: str = "customers", keep: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` as a caller of ``role`` may read it.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per segment or migration cell; not changed (a copy is returned).
    role : str
        The caller's role: only ``viewer`` has figures withheld.
    min_customers : int
        Rows with fewer customers than this (in ``count``; an empty row, 0, has no figures to
        hide) have every numeric column but the counts (:data:`COUNT_COLUMNS`, ``keep``) set
        to null. 1 or less withholds nothing.
    count : str, default "customers"
        The column counting each row's customers.
    keep : iterable of str
        More numeric columns never withheld.

    Returns
    -------
    pandas.DataFrame
        For a viewer, the rows with small ones' figures null and a :data:`WITHHELD` column
        (null or :func:`reason`); for other roles ``frame`` itself.
    """
    if role != "viewer" or min_customers <= 1:
        return frame
    kept = COUNT_COLUMNS | {count, *keep}
    values = [c for c in frame.columns if c not in kept and pd.api.types.is_numeric_dtype(frame[c])
              and not pd.api.types.is_bool_dtype(frame[c])]
    sizes = pd.to_numeric(frame[count], errors="coerce").fillna(0).to_numpy()
    small = (sizes > 0) & (sizes < min_customers)
    out = frame.copy()
    for c in values:
        out[c] = out[c].astype("float64").where(~small, np.nan)
    out[WITHHELD] = np.where(small, reason(min_customers), None)
    return out


def min_customers(project: Any) -> int:
    """The project's ``[server] min_cell_customers``."""
    return int(project.settings.server.min_cell_customers)
