"""The DuckDB memory limit of a store connection (``project.memory_limit`` in segflow.toml).

DuckDB's own default is 80 % of the machine's RAM per connection, which leaves too little
for the Python side of a run (Arrow buffers, model fits) and for anything else running on
the machine. segflow's default, ``"auto"``, is :data:`AUTO_SHARE` of the physical RAM;
beyond its limit DuckDB spills sorts, joins and aggregates to disk instead of failing.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from segflow.errors import StoreError

if TYPE_CHECKING:
    import duckdb

#: Share of the physical RAM that ``memory_limit = "auto"`` gives DuckDB.
AUTO_SHARE = 0.5

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_UNITS = {"kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB",
          "kib": "KiB", "mib": "MiB", "gib": "GiB", "tib": "TiB"}
#: How DuckDB shows a size (``current_setting('memory_limit')``: '476.8 MiB', '500 bytes').
_SHOWN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bytes|KiB|MiB|GiB|TiB|PiB)\s*$")
_POWERS = {"bytes": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4, "PiB": 5}


def physical_memory_bytes() -> int:
    """Physical RAM of this machine in bytes (``os.sysconf``; POSIX)."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def resolve_memory_limit(value: str) -> str:
    """Turn a ``memory_limit`` setting into a value for DuckDB's ``SET memory_limit``.

    Parameters
    ----------
    value : str
        ``"auto"`` (:data:`AUTO_SHARE` of the physical RAM), a share of the RAM such as
        ``"40%"``, or a size with a unit such as ``"8GB"`` or ``"1.5GiB"`` (KB/MB/GB/TB are
        powers of 1000, KiB/MiB/GiB/TiB of 1024).

    Returns
    -------
    str
        A size DuckDB accepts, e.g. ``"12022MiB"``.

    Raises
    ------
    StoreError
        The value is none of the above, or a share outside (0, 100] %.
    """
    text = str(value).strip()
    if text.lower() == "auto":
        share = AUTO_SHARE
    elif m := _SHARE.match(text):
        share = float(m.group(1)) / 100.0
        if not 0.0 < share <= 1.0:
            raise StoreError(f"memory_limit {value!r}: a share of the RAM must be in (0, 100] %")
    elif m := _SIZE.match(text):
        return f"{m.group(1)}{_UNITS[m.group(2).lower()]}"
    else:
        raise StoreError(
            f"memory_limit {value!r}: expected 'auto', a share such as '40%' or a size such as "
            "'8GB' or '1.5GiB'"
        )
    return f"{max(1, int(physical_memory_bytes() * share / 2**20))}MiB"


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The memory limit of a DuckDB connection, in bytes (DuckDB shows it rounded to 0.1 of
    its unit, e.g. '476.8 MiB' for 500MB, so the value is exact to about 0.1 %).

    Raises
    ------
    StoreError
        DuckDB showed the limit in a form this function does not know.
    """
    shown = str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
    m = _SHOWN.match(shown)
    if m is None:
        raise StoreError(f"cannot read DuckDB's memory limit {shown!r}")
    return int(float(m.group(1)) * 1024 ** _POWERS[m.group(2)])
