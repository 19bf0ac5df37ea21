"""A customer file from Excel for `segflow segment cluster`: number cells as ids are kept
only as whole numbers below 2^53 (as ingest's float ids), text cells as written."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from segflow.cli._cluster import read_customer_file
from segflow.errors import InputError


def test_excel_ids_are_exact_or_refused_with_the_row(tmp_path):
    path = tmp_path / "c.xlsx"
    pd.DataFrame({"customer_id": [123, 456.0, "00789", "12345678901234567890"],
                  "x": [1.0, 2.0, 3.0, 4.0]}).to_excel(path, index=False)
    con = ibis.duckdb.connect()
    got = read_customer_file(con, path, id_col="customer_id", name="t").to_pandas()
    assert got.customer_id.tolist() == ["123", "456", "00789", "12345678901234567890"]
    bad = tmp_path / "bad.xlsx"
    pd.DataFrame({"customer_id": ["A1", 2**53 + 2, 7], "x": [1.0, 2.0, 3.0]}).to_excel(bad, index=False)
    with pytest.raises(InputError, match=r"row 2.*customer_id|customer_id.*row 2") as err:
        read_customer_file(con, bad, id_col="customer_id", name="u")
    assert "9007199254740994" in str(err.value) and "format the id column as text" in str(err.value)
