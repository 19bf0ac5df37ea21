"""What every report section reads, computed once per report: the project, its currency, the
headline scheme, and cached store summaries (segment sizes, value, movements, the audit)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

import pandas as pd

from segflow.errors import ArgumentError
from segflow.report._movement import movement_cells
from segflow.report._queries import (
    quarantine_reasons,
    reconciliation,
    revenue_totals,
    segment_sizes,
    value_by_segment,
)

if TYPE_CHECKING:
    from segflow.campaigns._playbook import Playbook
    from segflow.project import Project

CLV_MODEL = "bgnbd_gg"
#: Whom a report can be written for (``segflow report --for``).
ROLES = ("analyst", "viewer")


@dataclasses.dataclass
class ReportContext:
    """Shared, cached inputs of the report sections.

    The headline scheme is the first scheme of the project file (``[[schemes]]`` order);
    its latest two snapshots are the "now" and "before" of the executive summary."""

    project: Project
    #: Who the report is for (:data:`ROLES`): ``viewer`` withholds the value figures of small
    #: segments, cells and campaign arms as the server does for its viewers
    #: (:mod:`segflow.report._viewer`); ``analyst`` shows every figure.
    role: str = "analyst"
    _cache: dict[Any, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:  # ("Viewer", "reader": a report of every figure, silently)
            raise ArgumentError(f"report: argument 'role': expected one of {', '.join(map(repr, ROLES))}; "
                                f"got {self.role!r}")

    @property
    def min_customers(self) -> int:
        """``[server] min_cell_customers`` for a report for viewers, else 0 (withhold nothing)."""
        return int(self.project.settings.server.min_cell_customers) if self.role == "viewer" else 0

    @property
    def currency(self) -> str:
        return self.project.settings.project.currency

    @functools.cached_property
    def schemes(self) -> list[str]:
        return [s for s in self.project.schemes() if self.dates(s)]

    @functools.cached_property
    def scheme_kinds(self) -> dict[str, str]:
        from segflow.pipeline import resolve_schemes

        return {s.name: s.kind for s in resolve_schemes(self.project.settings)}

    @property
    def headline_scheme(self) -> str | None:
        return self.schemes[0] if self.schemes else None

    @functools.cached_property
    def stored(self) -> bool:
        """True when the latest run stored its aggregates (:mod:`segflow.summaries`): the
        report then reads them instead of customer-level tables."""
        from segflow.summaries import summaries_run

        return summaries_run(self.project.store) is not None

    def dates(self, scheme: str) -> list[dt.date]:
        """Snapshot dates with assignments of ``scheme`` (from the aggregates when stored:
        the per-snapshot assignments view expands every change row)."""
        key = ("dates", scheme)
        if key not in self._cache:
            if self.stored:
                rows = self.project.store.raw.execute(
                    "SELECT DISTINCT snapshot_date FROM summary_segments WHERE scheme = ? ORDER BY 1",
                    [scheme]).fetchall()
                self._cache[key] = [r[0] for r in rows]
            else:
                self._cache[key] = self.project.snapshot_dates(scheme)
        return self._cache[key]

    @functools.cached_property
    def all_dates(self) -> list[dt.date]:
        """Snapshot dates with assignments of any scheme."""
        if self.stored:
            rows = self.project.store.raw.execute(
                "SELECT DISTINCT snapshot_date FROM summary_segments ORDER BY 1").fetchall()
            return [r[0] for r in rows]
        return self.project.snapshot_dates()

    def stored_result(self, name: str) -> tuple[dt.date | None, Any] | None:
        """``(snapshot, document)`` of a result the run stored (``summary_results``), when
        the stored aggregates are current; else None."""
        key = ("result", name)
        if key not in self._cache:
            from segflow.summaries import stored_result

            self._cache[key] = stored_result(self.project.store, name) if self.stored else None
        return self._cache[key]

    @functools.cached_property
    def totals(self) -> dict[str, Any]:
        """:func:`revenue_totals` of the transactions (stored by the run, else computed)."""
        from segflow.summaries import overview_from_document

        stored = self.stored_result("overview")
        if stored is not None:
            return overview_from_document(stored[1])
        return revenue_totals(self.project.store)

    @functools.cached_property
    def reconciliation(self) -> pd.DataFrame:
        return reconciliation(self.project.store)

    @functools.cached_property
    def quarantine_reasons(self) -> pd.DataFrame:
        return quarantine_reasons(self.project.store)

    def sizes(self, scheme: str, snapshot: dt.date) -> pd.DataFrame:
        key = ("sizes", scheme, snapshot)
        if key not in self._cache:
            if self.stored:
                from segflow.summaries import segment_table

                self._cache[key] = segment_table(self.project.store, scheme, snapshot).drop(
                    columns="revenue_all_time")
            else:
                self._cache[key] = segment_sizes(self.project.store, scheme, snapshot)
        return self._cache[key]

    @functools.cached_property
    def clv_date(self) -> dt.date | None:
        """The latest snapshot with CLV scores: the stored diagnostics' (a report from a
        Spark warehouse has no scores), else the scores'."""
        stored = self.stored_result("clv_diagnostics")
        if stored is not None:
            return stored[0]
        row = self.project.store.raw.execute(
            "SELECT max(snapshot_date) FROM customer_scores WHERE model = ?", [CLV_MODEL]
        ).fetchone()
        return row[0]

    def value(self, scheme: str, snapshot: dt.date) -> pd.DataFrame | None:
        """CLV by segment when CLV scores are stored at ``snapshot`` (else None: also when
        the run stored P(alive) but no CLV, its spend model not identified, whose segment
        sums would read as a predicted value of 0)."""
        key = ("value", scheme, snapshot)
        if key not in self._cache:
            scores, clv = self.project.store.raw.execute(
                "SELECT count(*), count(*) FILTER (WHERE score = 'clv') FROM customer_scores "
                "WHERE model = ? AND snapshot_date = ?", [CLV_MODEL, snapshot]).fetchone()
            if scores and not clv:
                self._cache[key] = None
            elif self.stored:  # (a Spark warehouse's aggregates come without customer scores)
                from segflow.summaries import value_table

                self._cache[key] = value_table(self.project.store, scheme, snapshot)
            else:
                self._cache[key] = (value_by_segment(self.project.store, scheme, snapshot, CLV_MODEL)
                                    if scores else None)
        return self._cache[key]

    def movements(self, scheme: str) -> pd.DataFrame | None:
        """:func:`movement_cells` between the last two snapshots of ``scheme`` (None if < 2)."""
        key = ("moves", scheme)
        if key not in self._cache:
            d = self.dates(scheme)
            if self.stored and len(d) >= 2:
                from segflow.summaries import movement_table

                self._cache[key] = movement_table(self.project.store, scheme, d[-2], d[-1])
                return self._cache[key]
            self._cache[key] = (
                movement_cells(self.project.store, scheme, d[-2], d[-1], model=CLV_MODEL)
                if len(d) >= 2
                else None
            )
        return self._cache[key]

    @functools.cached_property
    def playbook(self) -> Playbook:
        from segflow.campaigns._playbook import load_playbook

        return load_playbook()

    @functools.cached_property
    def audit(self) -> pd.DataFrame:
        from segflow.quality import audit
        from segflow.summaries import audit_table

        stored = audit_table(self.project.store) if self.stored else None
        if stored is not None:
            return stored
        return audit(self.project.store).to_pandas()

    def transitions(self, scheme: str, from_date: dt.date, to_date: dt.date) -> Any:
        """The transition matrix (with revenue moved) from the aggregates, else computed."""
        if self.stored:
            from segflow.summaries import transition_table

            return transition_table(self.project.store, scheme, from_date, to_date)
        return self.project.transitions(scheme, from_date, to_date)

    def pooled(self, scheme: str, dates: list[dt.date]) -> Any:
        """Transitions pooled over consecutive ``dates`` (aggregates, else computed)."""
        if self.stored:
            from segflow.summaries import pooled_table

            return pooled_table(self.project.store, scheme, dates)
        from segflow.migration import pooled_transition_matrix

        return pooled_transition_matrix(self.project.store.table("segment_assignments"), scheme=scheme, dates=dates)

    def is_rule_based(self, scheme: str) -> bool:
        return self.scheme_kinds.get(scheme, "rules") != "cluster"
