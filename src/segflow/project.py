"""A segflow project: a folder with ``segflow.toml`` and its DuckDB store.

:class:`Project` is the one object the CLI, the report and notebooks use: it holds the
settings, the store and the project folder, and exposes each stage as a method that returns
result objects (pandas / Arrow / Plotly underneath).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segflow.config import PROJECT_FILENAME, Settings
from segflow.errors import ConfigError, SegflowError
from segflow.pipeline import ProgressFn, RunSummary, resolve_schemes, run_pipeline
from segflow.store import Store
from segflow.store._spells import assigned_snapshots

if TYPE_CHECKING:
    import pandas as pd

TEMPLATE = Path(__file__).parent / "templates" / "segflow.toml"


class Project:
    """A project folder: settings (``segflow.toml``) plus the store (``segflow.duckdb``).

    Parameters
    ----------
    directory : str or Path
        The project folder.
    settings : Settings
    store : Store

    Examples
    --------
    >>> project = Project.open("demo")          # doctest: +SKIP
    >>> project.ingest(); project.run()         # doctest: +SKIP
    >>> project.segment_sizes("rfm")            # doctest: +SKIP
    """

    def __init__(self, directory: str | Path, settings: Settings, store: Store) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.store = store
        self._warehouse: Any = None

    # -- creating and opening ----------------------------------------------------------
    @classmethod
    def init(cls, directory: str | Path, *, toml_text: str | None = None, overwrite: bool = False) -> Project:
        """Write a commented ``segflow.toml`` (the template, or ``toml_text``) and create the store."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / PROJECT_FILENAME
        if path.exists() and not overwrite:
            raise ConfigError(f"{path} already exists; use --force to overwrite it")
        path.write_text(toml_text or TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
        return cls.open(directory)

    @classmethod
    def open(cls, directory: str | Path = ".", *, read_only: bool = False) -> Project:
        """Open the project in ``directory``: load its settings and its store (upgrading an
        older store's schema).

        ``read_only=True`` writes nothing and shares the store with other readers and with a
        running ``segflow refresh`` (a writer is refused then); a store of an older schema
        raises :class:`~segflow.store.StoreNeedsUpgrade` (see :meth:`open_reading`)."""
        directory = Path(directory)
        settings = Settings.load(directory)
        store = Store(
            directory / settings.project.store,
            read_only=read_only,
            memory_limit=settings.project.memory_limit,
        )
        return cls(directory, settings, store)

    @classmethod
    def open_reading(cls, directory: str | Path = ".") -> Project:
        """The project of ``directory`` with its store opened read-only, for code that only
        reads it (segflow's reading commands): as ``open(directory, read_only=True)``, except
        that a store of an older schema is first upgraded by one opening for writing
        (:func:`segflow.store.open_reading`)."""
        from segflow.store import open_reading

        directory = Path(directory)
        settings = Settings.load(directory)
        store = open_reading(directory / settings.project.store,
                             memory_limit=settings.project.memory_limit)
        return cls(directory, settings, store)

    @classmethod
    def on_warehouse(cls, directory: str | Path = ".") -> Project:
        """The project of ``directory`` for a command that reads only its Spark warehouse
        (:attr:`warehouse`): its settings, and an empty in-memory store in place of the
        DuckDB file, which is neither opened nor created."""
        directory = Path(directory)
        return cls(directory, Settings.load(directory), Store(":memory:"))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # a closed project says so (its calls raise "is closed")
        closed = ", closed" if getattr(self.store, "closed", False) else ""
        return f"Project({str(self.directory)!r}, store={self.settings.project.store!r}{closed})"

    # -- stages --------------------------------------------------------------------------
    def ingest(self, *, progress: Any = None, force: bool = False, now: dt.datetime | None = None,
               engine: str | None = None) -> Any:
        """Read every source into the canonical tables; returns the reconciliation report.

        ``force`` reloads files whose content was loaded before; ``now`` is the load time
        (tz-naive UTC) that the ``future_date`` rule compares with (default: the clock).
        On Spark (``engine``, default ``[engine] kind``) Spark reads the sources and the
        loads go to the project's warehouse (:attr:`warehouse`) as one run."""
        self._live()
        from segflow.engine import resolve_engine
        from segflow.sources import ingest
        from segflow.summaries import store_audit

        if resolve_engine(engine, self.settings.engine) == "spark":
            from segflow.warehouse import ingest_on_warehouse

            return ingest_on_warehouse(self.warehouse, self.settings, self.directory,
                                       progress=progress, force=force, now=now)
        report = ingest(self.store, self.settings, self.directory, progress=progress, force=force,
                        now=now)
        store_audit(self.store)  # the audit of the data as loaded, read by the run and report
        return report

    def run(
        self, *, engine: str | None = None, progress: ProgressFn | None = None, full: bool = False
    ) -> RunSummary:
        """Features and segment assignments for the snapshots that are new or whose data
        changed (every snapshot with ``full=True``), on ``engine`` (default: ``[engine] kind``
        of segflow.toml); see :func:`segflow.pipeline.run_pipeline`. On Spark the run reads
        and writes the project's warehouse (:attr:`warehouse`,
        :func:`segflow.warehouse.run_on_warehouse`: every snapshot, ``full`` or not)."""
        self._live()
        from segflow.engine import resolve_engine

        engine = resolve_engine(engine, self.settings.engine)
        if engine == "spark":
            from segflow.warehouse import run_on_warehouse

            return run_on_warehouse(self.warehouse, self.settings, progress=progress)
        return run_pipeline(self.store, self.settings, engine=engine, progress=progress, full=full)

    @property
    def warehouse(self) -> Any:
        """The project's Spark store (:class:`segflow.store.SparkStore`), from ``[engine]``
        (master, warehouse, database); the session starts on first use."""
        if self._warehouse is None:
            from segflow.store._spark import SparkStore

            self._warehouse = SparkStore.open(self.settings.engine, self.directory)
        return self._warehouse

    def schemes(self) -> list[str]:
        return [s.name for s in resolve_schemes(self.settings)]

    def _live(self) -> None:
        """Raise a one-line error when the project was closed (its store connection is gone)."""
        if getattr(self.store, "closed", False):
            raise SegflowError(f"the project {str(self.directory)!r} is closed; open it again "
                               "with segflow.Project.open(...)")

    def snapshot_dates(self, scheme: str | None = None) -> list[dt.date]:
        """Snapshot dates that have stored assignments (for ``scheme``, or any): an empty
        list for a scheme of the project not run yet, a one-line error for a name that is
        neither a scheme of the project nor one with stored assignments (a typo gave ``[]``)."""
        self._live()
        if scheme is not None:
            self._scheme_name(scheme)
        if {"segment_spells", "segment_snapshots"} <= set(self.store.tables()):
            dates = assigned_snapshots(self.store.raw, scheme or None)
        else:
            where, params = (" WHERE scheme = ?", [scheme]) if scheme else ("", [])
            dates = [r[0] for r in self.store.raw.execute(
                f"SELECT DISTINCT snapshot_date FROM segment_assignments{where} ORDER BY 1", params
            ).fetchall()]
        if not dates and scheme and scheme not in self.schemes():
            raise self._unknown_scheme(scheme)
        return dates

    def _unknown_scheme(self, scheme: str) -> SegflowError:
        """The error for a scheme name the project does not know, with a did-you-mean."""
        from segflow._suggest import did_you_mean

        schemes = self.schemes()
        hint = did_you_mean(scheme, schemes)
        return SegflowError(f"no scheme {scheme!r}{'; ' + hint if hint else ' '}"
                            f"(schemes of this project: {', '.join(schemes)})")

    def _scheme_name(self, scheme: Any) -> str:
        if not isinstance(scheme, str):
            raise SegflowError(f"a scheme is named by text, not {type(scheme).__name__} {scheme!r} "
                               f"(schemes of this project: {', '.join(self.schemes())})")
        return scheme

    def _snapshot(self, scheme: str, value: Any) -> dt.date:
        """``value`` (a date, datetime, pandas Timestamp or ``YYYY-MM-DD``) as one of the
        snapshot dates of ``scheme``, else a one-line error naming the nearest ones."""
        from segflow._dates import as_date

        day = as_date(value)
        dates = self.snapshot_dates(scheme)
        if day not in dates:
            before = [d for d in dates if d < day][-1:]
            after = [d for d in dates if d > day][:1]
            near = " and ".join(d.isoformat() for d in before + after)
            raise SegflowError(f"scheme {scheme!r} has no snapshot at {day}; the nearest: {near} "
                               f"({len(dates)} snapshots, {dates[0]} to {dates[-1]})")
        return day

    def _check_scheme(self, scheme: str) -> None:
        self._scheme_name(scheme)
        if not self.snapshot_dates(scheme):  # (a name the project does not know: raised there)
            schemes = self.schemes()
            raise SegflowError(
                f"no assignments stored for scheme {scheme!r}; run `segflow run` first "
                f"(schemes of this project: {', '.join(schemes)})"
            )

    def segment_sizes(self, scheme: str, snapshot: dt.date | str | None = None) -> pd.DataFrame:
        """Customers, share, revenue in the 12 months before the snapshot, and revenue share
        per segment of ``scheme`` at ``snapshot`` (default: the latest).

        ``snapshot`` is a date, a datetime or pandas Timestamp (its calendar date as written)
        or ``"YYYY-MM-DD"``, and must be a snapshot date of the scheme (SegflowError naming
        the nearest ones otherwise)."""
        from segflow.report._queries import segment_sizes
        from segflow.summaries import segment_table, summaries_run

        self._check_scheme(scheme)
        day = self.snapshot_dates(scheme)[-1] if snapshot is None else self._snapshot(scheme, snapshot)
        if summaries_run(self.store) is not None:  # the run's stored aggregates: the same rows
            return segment_table(self.store, scheme, day).drop(columns="revenue_all_time")
        return segment_sizes(self.store, scheme, day)

    def snapshot_pair(self, scheme: str, from_date: dt.date | str | None = None,
                      to_date: dt.date | str | None = None) -> tuple[dt.date, dt.date]:
        """The two snapshots of ``scheme`` a migration compares, as ``segflow migrate --from
        --to`` (and ``migrate who``) read them: ``to_date`` (default: the latest snapshot) and
        ``from_date`` (default: the snapshot before ``to_date``, so ``to_date`` alone compares
        it with its predecessor). Dates as for :meth:`segment_sizes`; a given date must be a
        snapshot of the scheme, and ``from_date`` before ``to_date`` (SegflowError, one line).
        """
        from segflow.migration._transitions import snapshot_pair

        self._check_scheme(scheme)
        dates = self.snapshot_dates(scheme)
        frm = to = None
        if len(dates) >= 2:  # else the rule's own error, whatever the dates given
            frm = None if from_date is None else self._snapshot(scheme, from_date)
            to = None if to_date is None else self._snapshot(scheme, to_date)
        return snapshot_pair(dates, scheme, frm, to)

    def transitions(self, scheme: str, from_date: dt.date | str | None = None,
                    to_date: dt.date | str | None = None, *, interval: str = "dirichlet",
                    level: float = 0.95) -> Any:
        """The transition matrix of ``scheme`` between two snapshots (:meth:`snapshot_pair`:
        default ``to_date`` the latest, ``from_date`` the snapshot before ``to_date``), with
        each cell's net revenue between them (:func:`segflow.migration.transition_matrix`;
        ``interval`` and ``level`` as there). Dates as for :meth:`segment_sizes`.

        Read from the run's stored cells when they are current and hold the pair (consecutive
        snapshots, or any snapshot and the latest: the same matrix, see
        :func:`segflow.summaries.transition_table`), else computed from the change rows and
        the transactions (`segflow migrate` at 1M customers: 3.1 s computed, 2.0 s stored,
        most of it start-up)."""
        from segflow.migration import transition_matrix
        from segflow.summaries import summaries_run, transition_table

        frm, to = self.snapshot_pair(scheme, from_date, to_date)
        if summaries_run(self.store) is not None:
            try:
                return transition_table(self.store, scheme, frm, to, interval=interval, level=level)
            except SegflowError:  # a pair the run did not store: computed below
                pass
        return transition_matrix(
            self.store.table("segment_assignments"),
            scheme=scheme,
            from_date=frm,
            to_date=to,
            transactions=self.store.table("transactions"),
            interval=interval,  # type: ignore[arg-type]
            level=level,
        )

    # -- notebook views of the other stages -----------------------------------------------
    def _no_clv(self) -> SegflowError:
        """The error for a project without CLV scores: a run not done yet, or the latest run
        could not score (its note says why: the model not identified, too few repeat buyers)."""
        row = self.store.raw.execute(
            "SELECT message FROM runs WHERE command = 'run' AND status = 'ok' "
            "ORDER BY started_at DESC LIMIT 1").fetchone()
        if row is None:
            return SegflowError("no CLV scores stored; `segflow run` writes them at the latest snapshot")
        notes = [n for n in (row[0] or "").splitlines() if "clv" in n.lower() or "bg/nbd" in n.lower()]
        why = f" ({notes[0].strip()})" if notes else ""
        return SegflowError(f"no CLV scores stored: the latest `segflow run` stored none{why}; "
                            "the report's notes on the run say why")

    def clv(self, scheme: str | None = None) -> pd.DataFrame:
        """Predicted value by segment of ``scheme`` (default: the first scheme) at the latest
        snapshot with stored CLV scores: customers, mean P(active), expected purchases and
        52-week CLV (sum, mean, share). Raises SegflowError when no scores are stored."""
        from segflow.report._context import CLV_MODEL, ReportContext

        ctx = ReportContext(self)
        scheme = scheme or (ctx.headline_scheme or "")
        self._check_scheme(scheme)
        if ctx.clv_date is None:
            raise self._no_clv()
        from segflow.report._queries import value_by_segment

        return value_by_segment(self.store, scheme, ctx.clv_date, CLV_MODEL)

    def clv_diagnostics(self) -> Any:
        """The report's CLV checks (frequency/recency matrices, holdout tracking, deciles,
        caveats) at the latest CLV snapshot; ``.figures()`` gives the Plotly figures."""
        self._live()
        from segflow.report._clv import clv_diagnostics
        from segflow.report._context import ReportContext

        snapshot = ReportContext(self).clv_date
        if snapshot is None:
            raise self._no_clv()
        return clv_diagnostics(self.store, snapshot)

    def train_churn(self, *, horizon_days: int = 90, threads: int | None = None,
                    data_end: dt.date | str | None = None) -> Any:
        """Train the churn model on the project's snapshots, as ``segflow churn train`` does
        (one code path: :func:`segflow.models._churn_project.train_project_churn`), and save
        it under ``models/`` for :meth:`score_churn` and ``segflow churn score``. Returns the
        :class:`~segflow.models.ChurnTraining` (``.evaluation``: AUC, lift, calibration).
        ``threads=1`` on a shared machine; ``data_end`` as ``--data-end``."""
        self._live()
        from segflow._dates import as_date
        from segflow.models._churn_project import train_project_churn

        end = None if data_end is None else as_date(data_end)
        training, _ = train_project_churn(self, horizon_days=horizon_days, threads=threads,
                                          data_end=end)
        return training

    def score_churn(self, snapshot: dt.date | str | None = None, *, horizon_days: int = 90,
                    threads: int | None = None) -> Any:
        """Score the customers at ``snapshot`` (default: the latest) with the model
        :meth:`train_churn` saved, and store the scores (what :meth:`churn_scores` reads), as
        ``segflow churn score`` does. Returns the :class:`~segflow.models.ChurnScores`."""
        self._live()
        from segflow._dates import as_date
        from segflow.models._churn_project import score_project_churn

        day = None if snapshot is None else as_date(snapshot)
        scores, _ = score_project_churn(self, horizon_days=horizon_days, snapshot=day,
                                        threads=threads)
        return scores

    def churn_scores(self) -> pd.DataFrame:
        """Stored churn scores (every model and snapshot) as a long DataFrame, from the store's
        ``customer_scores`` (score names starting with ``churn``; empty when none are stored:
        :meth:`train_churn` then :meth:`score_churn` store them)."""
        self._live()
        return self.store.raw.execute(
            "SELECT * FROM customer_scores WHERE score LIKE 'churn%' OR model LIKE 'churn%' "
            "ORDER BY snapshot_date, model, customer_id"
        ).df()

    def campaigns(self, scheme: str | None = None) -> list[Any]:
        """Campaign read-outs (lift by segment of ``scheme``, default lifecycle or the first
        scheme) of every campaign with exposures; each has ``.table``, ``.figures()``."""
        from segflow.campaigns import campaign_reports

        schemes = self.schemes()
        scheme = ("lifecycle" if "lifecycle" in schemes else schemes[0]) if scheme is None else scheme
        self._check_scheme(scheme)
        return list(campaign_reports(self.store, scheme))

    def summary(self) -> Any:
        """The report's executive summary: headline movements, value at stake, data health and
        the playbook's actions (``.headlines``, ``.kpis``, ``.actions``); shows as HTML."""
        self._live()
        from segflow.report._context import ReportContext
        from segflow.report._summary import executive_summary

        return executive_summary(ReportContext(self))

    def report(self, path: str | Path | None = None, *, engine: str | None = None, role: str = "analyst") -> Path:
        """Write the self-contained HTML report; returns its path. On Spark (``engine``,
        default ``[engine] kind``) it reads the aggregates of the project's warehouse
        (:func:`segflow.warehouse.aggregates_store`) instead of the DuckDB store.
        ``role="viewer"``: for readers of aggregates only, the value figures of segments,
        moves and campaign arms below ``[server] min_cell_customers`` withheld as the
        server withholds them from its viewers (docs/report.md); ``"analyst"``: every figure."""
        self._live()
        from segflow.engine import resolve_engine
        from segflow.report import write_report

        path = Path(path) if path else self.directory / "report.html"
        if resolve_engine(engine, self.settings.engine) == "spark":
            from segflow.warehouse import aggregates_store

            wh = self.warehouse
            with Project(self.directory, self.settings, aggregates_store(wh)) as view:
                return write_report(view, path, source=f"warehouse {wh.root}", role=role)
        return write_report(self, path, role=role)
