"""A small hand-written store for export tests: three snapshots of one scheme, customers
with personal data (one with a formula-like value), scores at the latest snapshot.

The expected CRM fields are written out by hand in :data:`EXPECTED` so that the tests compare
the exports with an independent statement of what they should hold.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from segflow.project import Project

S1, S2, S3 = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)

#: customer -> segment at S1, S2, S3 (None = not assigned)
HISTORY: dict[str, tuple[str | None, str | None, str | None]] = {
    "C1": ("Loyal", "Loyal", "Loyal"),
    "C2": ("Loyal", "At risk", "At risk"),
    "C3": ("New", "Loyal", "=cmd|' /C calc'!A0"),  # a segment name that looks like a formula
    "C4": ("At risk", "At risk", None),  # left before S3
    "C5": (None, None, "New"),  # first seen at S3
    "C6": ("At risk", None, "At risk"),  # absent at S2, back at S3
    "C7": (None, "New", "Loyal"),
}

CUSTOMERS = {
    "C1": (" Ann@Example.com ", "+44 20 7946 0001"),
    "C2": ("bob@example.org", "020 7946 0002"),
    "C3": ("=HYPERLINK(\"http://x\")", None),
    "C4": ("dee@example.net", "0001"),
    "C5": (None, "+1 555 0100"),
    "C6": ("fay@example.com", None),
    "C7": ("gus@example.com", "555"),
}

#: At S3, per customer: (previous_segment, last_change_date, periods_in_segment), by hand.
EXPECTED_S3 = {
    "C1": (None, S1, 3),
    "C2": ("Loyal", S2, 2),
    "C3": ("Loyal", S3, 1),
    "C5": (None, S3, 1),
    "C6": ("At risk", S3, 1),  # run broken by the absence: previous = segment before it
    "C7": ("New", S3, 1),
}

#: P(alive) and CLV at S3.
SCORES = {"C1": (0.9, 120.5), "C2": (0.4, 30.0), "C3": (0.7, 55.25), "C5": (0.95, 10.0)}


def build(directory: Path) -> Path:
    """Create the project in ``directory``; returns it."""
    with Project.init(directory) as project:
        rows = [(c, s, seg) for c, segs in HISTORY.items()
                for s, seg in zip((S1, S2, S3), segs, strict=True) if seg is not None]
        project.store.append("segment_assignments", pa.table({
            "scheme": pa.array(["rfm"] * len(rows)),
            "scheme_version": pa.array(["1"] * len(rows)),
            "snapshot_date": pa.array([r[1] for r in rows], pa.date32()),
            "customer_id": pa.array([r[0] for r in rows]),
            "segment": pa.array([r[2] for r in rows]),
            "segment_rank": pa.array([1] * len(rows), pa.int32()),
            "run_id": pa.array(["r"] * len(rows)),
        }))
        ids = list(CUSTOMERS)
        project.store.append("customers", pa.table({
            "customer_id": pa.array(ids),
            "email": pa.array([CUSTOMERS[c][0] for c in ids], pa.string()),
            "phone": pa.array([CUSTOMERS[c][1] for c in ids], pa.string()),
        }))
        sc = [(c, name, v[i]) for c, v in SCORES.items() for i, name in enumerate(("p_alive", "clv"))]
        project.store.append("customer_scores", pa.table({
            "snapshot_date": pa.array([S3] * len(sc), pa.date32()),
            "customer_id": pa.array([r[0] for r in sc]),
            "model": pa.array(["bgnbd_gg"] * len(sc)),
            "score": pa.array([r[1] for r in sc]),
            "value": pa.array([r[2] for r in sc], pa.float64()),
            "run_id": pa.array(["r"] * len(sc)),
        }))
    return directory


def changes_by_hand(since: dt.date, until: dt.date) -> dict[str, tuple[str, str | None, str | None]]:
    """customer -> (change, segment at since, segment at until) for customers that differ."""
    idx = {S1: 0, S2: 1, S3: 2}
    out = {}
    for c, segs in HISTORY.items():
        a, b = segs[idx[since]], segs[idx[until]]
        if a == b:
            continue
        out[c] = ("new" if a is None else "removed" if b is None else "changed", a, b)
    return out
