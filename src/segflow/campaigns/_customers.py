"""One row per customer in an experiment's responses (``campaign_effect``, ``fit_uplift``):
a customer on two rows counted its outcome twice in a read-out (and sat on both sides of an
uplift model's train/test split); a row without an id was nobody's, yet counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segflow.errors import InputError
from segflow.exports._pii import is_customer_key


def customer_column(columns: Sequence[str], id_col: str | None = None,
                    source: str | None = None) -> str | None:
    """The column of ``columns`` identifying customers: ``id_col`` when given (an
    :class:`InputError` naming it when absent), else ``customer_id``, else the first column
    named as a customer key (``CustomerID``, ``client_id``, ``user_id``, ``id``...:
    :func:`segflow.exports._pii.is_customer_key`); None when there is none."""
    names = [str(c) for c in columns]
    if id_col is not None:
        if id_col not in names:
            raise InputError(f"no id column; columns are: {', '.join(names)}", file=source,
                             column=id_col)
        return id_col
    if "customer_id" in names:
        return "customer_id"
    return next((c for c in names if is_customer_key(c)), None)


def refuse_repeated_customers(responses: Any, id_col: str | None = None,
                              source: str | None = None) -> None:
    """Refuse responses (a pandas DataFrame or an Ibis table) that are not one row per
    customer, as ``segflow export audience --customers`` refuses a file
    (:func:`segflow._rows.check_one_row_per_id`): no rows, rows without an id, or an id on
    several rows, naming the file (``source``), the first rows and the id column. Responses
    without an id column (see :func:`customer_column`) are not checked."""
    import pandas as pd

    from segflow._rows import check_one_row_per_id, check_one_row_per_id_frame

    column = customer_column(list(responses.columns), id_col, source)
    if column is None:
        return
    if isinstance(responses, pd.DataFrame):
        check_one_row_per_id_frame(responses.reset_index(drop=True), column, source)
    else:
        check_one_row_per_id(responses, column, source)
