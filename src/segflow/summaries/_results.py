"""The run's stored model results: what the report shows beyond segment aggregates.

``segflow run`` stores, next to the ``summary_*`` tables and in the same transaction, one JSON
document per result in ``summary_results`` (store schema 8), so that the report reads them
instead of refitting models or scanning customer-level tables:

``clv_diagnostics`` (at the latest CLV snapshot)
    the BG/NBD diagnostics of :mod:`segflow.report._clv`: the fitted model's parameters (the
    run's own, from ``model_params``), the typical customer age and the frequency range of
    the matrices, the number of one-time buyers, and the holdout check (the model refitted on
    history up to ``holdout_weeks`` before the snapshot): weekly tracking (actual and
    expected repeat purchases) and calibration by decile. Or ``{"error": ..., "holdout_weeks": ...}`` when the
    model cannot be identified.
``campaigns`` (at the latest snapshot of the campaigns' scheme)
    :func:`segflow.campaigns.campaign_reports` of every campaign with a control arm: the
    lift table by segment and the migration counts and shares (a list, empty when there are
    no campaigns).
``overview`` (at the latest snapshot)
    :func:`segflow.report._queries.revenue_totals` (totals of the transactions table).
``forecasts`` (at the latest snapshot)
    per scheme, :func:`segflow.migration.segment_forecast` with its defaults (the one
    definition the CLI, the API and the dashboard use: the last year's pairs pooled, their
    mean arrivals entering, :data:`~segflow.migration._forecast.FORECAST_PERIODS` periods) on
    the stored per-pair transition counts: its table and its ``meta``.

Tables inside a document keep their columns, dtypes and values exactly (floats through
``repr``; NaN as JSON ``NaN``), so a report from the stored documents shows the same numbers
as one computed directly.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segflow.errors import InputError, SegflowError

if TYPE_CHECKING:
    import ibis

    from segflow.store import Store

#: The weeks before the latest snapshot held out to check the CLV model.
HOLDOUT_WEEKS = 26
#: Horizon of the expected purchases in the diagnostics' matrix.
HORIZON_WEEKS = 52.0
CLV_MODEL = "bgnbd_gg"
RESULTS = ("clv_diagnostics", "campaigns", "overview", "forecasts")


# -- exact JSON for small frames ---------------------------------------------------------
def _value(v: Any) -> Any:
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating | float):
        return float(v)  # json writes repr(): exact; NaN/inf as NaN/Infinity
    if isinstance(v, pd.Timestamp):
        return {"ts": v.isoformat()}
    if isinstance(v, dt.datetime):
        return {"ts": v.isoformat()}
    if isinstance(v, dt.date):
        return {"date": v.isoformat()}
    return v


def _revive(v: Any) -> Any:
    if isinstance(v, dict):
        if "date" in v:
            return dt.date.fromisoformat(v["date"])
        if "ts" in v:
            return dt.datetime.fromisoformat(v["ts"])
    return v


def frame_document(frame: pd.DataFrame) -> dict[str, Any]:
    """A small DataFrame as a JSON-ready dict that :func:`document_frame` turns back into an
    equal frame (columns, dtypes, values)."""
    frame = frame.reset_index(drop=True)
    return {
        "columns": [str(c) for c in frame.columns],
        "dtypes": [str(t) for t in frame.dtypes],
        "data": [[_value(v) for v in row] for row in frame.itertuples(index=False, name=None)],
    }


def document_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """The DataFrame of a :func:`frame_document`."""
    rows = [[_revive(v) for v in row] for row in doc["data"]]
    frame = pd.DataFrame(rows, columns=doc["columns"])
    if not rows:
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in doc["columns"]})
    for col, dtype in zip(doc["columns"], doc["dtypes"], strict=True):
        if dtype == "object":
            frame[col] = frame[col].astype(object)
            continue
        if dtype.startswith("datetime64"):
            frame[col] = pd.to_datetime(frame[col]).astype(dtype)
            continue
        frame[col] = frame[col].astype(dtype)
    return frame


def dumps(doc: Any) -> str:
    """JSON text of a document (floats exact through ``repr``)."""
    return json.dumps(doc, allow_nan=True)


# -- computing ---------------------------------------------------------------------------
def clv_diagnostics_document(
    transactions: ibis.Table, snapshot: dt.date, *, holdout_weeks: int = HOLDOUT_WEEKS,
    model: Any = None, triples: pd.DataFrame | None = None, days: ibis.Table | None = None,
    states: Any = None,
) -> dict[str, Any]:
    """The CLV diagnostics at ``snapshot`` (see the module notes): two BTYD summaries of the
    transactions (all history before ``snapshot``; and up to ``holdout_weeks`` before it with
    those weeks held out), the holdout refit and its tracking and decile tables.

    ``model``: the fitted BG/NBD of the snapshot (the run's, from ``model_params``); fitted
    here on all history when None. ``triples``: the compressed summary of all history before
    ``snapshot`` (:func:`segflow.models.compress`: ``x, t_x, T, count``) when the caller has
    it (the run's CLV stage); computed here when None. ``days``: the purchase days of
    ``transactions`` (:func:`segflow.models.purchase_days`, ``end=None``) when the caller has
    them cached (the run's CLV stage): both summaries and the tracking curves read them
    instead of the lines (same result). ``states``: the run's BTYD states
    (:class:`segflow.models._btyd_state.BTYDStates`), read instead of both when they hold
    the dates of the holdout summary (same result).

    Raises
    ------
    SegflowError
        When a model cannot be identified (e.g. no repeat buyers).
    """
    from segflow.models import BetaGeoModel, btyd_summary, compress, validate_holdout

    full = triples if triples is not None else compress(
        btyd_summary(transactions, calibration_end=snapshot, time_unit="W", warn=False, days=days))
    weights = full["count"]
    typical_t = float(np.round(np.average(full["T"], weights=weights)))
    max_x = int(min(np.quantile(np.repeat(full["x"].to_numpy(), weights.to_numpy().astype(int)), 0.99), 30)) + 1
    one_time = int(weights[full["x"] == 0].sum())
    total = int(weights.sum())
    cal_end = snapshot - dt.timedelta(weeks=holdout_weeks)
    window_start = cal_end - (snapshot - cal_end)
    if states is not None and {window_start, cal_end, snapshot} <= set(states.states):
        summary = states.holdout_summary(cal_end, snapshot, time_unit="W")
        repeat_days = states.repeat_days
    else:
        summary = btyd_summary(transactions, calibration_end=cal_end, observation_end=snapshot,
                               time_unit="W", warn=False, days=days)
        repeat_days = None
    # one customer-level table, read by the fit, the validation and the tracking curves
    cached = summary.cache() if hasattr(summary, "cache") else summary
    try:
        cal = compress(cached)
        if not (cal["T"] > 0).any():  # the model's own error would say "no customers"
            raise SegflowError(
                f"no customer bought before the calibration end {cal_end} (the snapshot "
                f"{snapshot} less the {holdout_weeks}-week holdout): the holdout diagnostics "
                "need purchases before it")
        cal_model = BetaGeoModel().fit(cal[cal["T"] > 0])
        validation = validate_holdout(cached, cal_model, time_unit="W", transactions=transactions,
                                      days=days, repeat_days=repeat_days)
        first = cached.aggregate(first=cached.first_purchase.min()).execute().iloc[0, 0]
    finally:
        if cached is not summary:
            cached.release()
    if model is None:  # after the holdout's own checks: their reason is the more specific
        model = BetaGeoModel().fit(full[full["T"] > 0])
    # the frequency/recency matrices for a customer of typical age (evaluated here, so that
    # the report needs no model code)
    xx, rr = np.meshgrid(np.arange(0, max_x + 1), np.arange(0, int(typical_t) + 1), indexing="ij")
    t_x = np.where(xx == 0, 0.0, rr.astype(float))
    ages = np.full(xx.shape, typical_t)
    expected = np.asarray(model.expected_purchases(HORIZON_WEEKS, xx, t_x, ages), dtype=float)
    p_alive = np.asarray(model.p_alive(xx, t_x, ages), dtype=float)
    return {
        "snapshot": snapshot.isoformat(),
        "calibration_end": cal_end.isoformat(),
        "holdout_weeks": holdout_weeks,
        "model": {"model": type(model).__name__, "params": {k: float(v) for k, v in model.params_.items()}},
        "calibration_model": {"model": type(cal_model).__name__,
                              "params": {k: float(v) for k, v in cal_model.params_.items()}},
        "typical_T": typical_t,
        "max_x": max_x,
        "one_time_customers": one_time,
        "customers": total,
        "tracking_start": pd.Timestamp(first).date().isoformat(),
        "horizon_weeks": HORIZON_WEEKS,
        "expected": expected.tolist(),
        "p_alive": p_alive.tolist(),
        "tracking": frame_document(validation.tracking),
        "deciles": frame_document(validation.deciles),
    }


def campaign_documents(store: Store, scheme: str | None, *,
                       reuse: tuple[dt.datetime, Collection[dt.date]] | None = None) -> list[dict[str, Any]]:
    """:func:`segflow.campaigns.campaign_reports` of ``scheme`` as documents (see
    :func:`campaign_from_document`); empty without exposures or schemes.

    ``reuse = (unchanged_before, recomputed)``: no input row with ``ts`` before
    ``unchanged_before`` changed since the stored ``campaigns`` document was written, and
    ``recomputed`` holds the snapshots of ``scheme`` whose assignments this run wrote (or
    may have changed). A stored read-out is then kept as it is when nothing it reads can
    have changed: same scheme, same first and last exposure, its response windows (up to
    the last exposure plus ``window_days``) before ``unchanged_before``, a migration lift
    between the same snapshots before and after it, neither of them recomputed. The others
    are computed again; the list equals a full recomputation's.
    """
    from segflow.campaigns import campaign_report
    from segflow.campaigns._store import campaigns_summary, scheme_snapshots

    if scheme is None:
        return []
    # one row per campaign and arm (none without exposures): the campaigns' windows (their
    # first and last exposure, as campaign_window) from it, and the scheme's snapshots read
    # once, for every read-out
    summary = campaigns_summary(store)
    if summary.empty:
        return []
    order = summary[summary.arm == "control"].sort_values("first_exposure").campaign_id.tolist()
    windows = summary.groupby("campaign_id").agg(start=("first_exposure", "min"), end=("last_exposure", "max"))
    kept = _reusable_campaigns(store, scheme, reuse, windows)
    snapshots: list[dt.date] | None = None
    out = []
    for cid in order:  # one read-out per campaign (few), as campaign_reports
        if cid in kept:
            out.append(kept[cid])
            continue
        try:
            if snapshots is None:
                snapshots = scheme_snapshots(store, scheme)
            report = campaign_report(store, cid, scheme, snapshots=snapshots,
                                     window=_window(windows, cid))
        except InputError:  # skipped (campaign_reports warns why)
            continue
        out.append(_campaign_document(report))
    return out


def _window(windows: pd.DataFrame, campaign_id: str) -> tuple[dt.datetime, dt.datetime] | None:
    """``(first, last)`` exposure of a campaign from :func:`campaign_documents`' windows, as
    :func:`segflow.campaigns._store.campaign_window` returns them (None: read it there)."""
    if campaign_id not in windows.index:
        return None
    row = windows.loc[campaign_id]
    if pd.isna(row["start"]) or pd.isna(row["end"]):
        return None
    return pd.Timestamp(row["start"]).to_pydatetime(), pd.Timestamp(row["end"]).to_pydatetime()


def _reusable_campaigns(store: Store, scheme: str, reuse: tuple[dt.datetime, Collection[dt.date]] | None,
                        windows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The stored campaign documents :func:`campaign_documents` keeps (by campaign id)."""
    stored = stored_result(store, "campaigns") if reuse is not None else None
    if stored is None or stored[1].get("scheme") != scheme:
        return {}
    unchanged_before, recomputed = reuse
    snaps = sorted(r[0] for r in store.raw.execute(
        "SELECT DISTINCT snapshot_date FROM segment_snapshots WHERE scheme = ?", [scheme]).fetchall())
    kept = {}
    for doc in stored[1]["reports"]:
        cid, m = doc["campaign_id"], doc["migration"]
        if cid not in windows.index or m is None:
            continue
        start, end = _revive(doc["start"]), _revive(doc["end"])
        now = windows.loc[cid]
        if (pd.Timestamp(now["start"]), pd.Timestamp(now["end"])) != (pd.Timestamp(start), pd.Timestamp(end)):
            continue
        if end + dt.timedelta(days=doc["window_days"]) > unchanged_before:
            continue
        before = [d for d in snaps if d <= start.date()]
        after = [d for d in snaps if dt.datetime.combine(d, dt.time()) > end]
        b, a = _revive(m["before"]), _revive(m["after"])
        if not before or not after or (before[-1], after[0]) != (b, a) or {b, a} & set(recomputed):
            continue
        kept[cid] = doc
    return kept


def _campaign_document(report: Any) -> dict[str, Any]:
    e, m = report.effect, report.migration
    return {
        "campaign_id": report.campaign_id, "scheme": report.scheme, "window_days": report.window_days,
        "start": _value(report.start), "end": _value(report.end), "notes": list(report.notes),
        "effect": {"table": frame_document(e.table), "control": e.control, "arms": list(e.arms),
                   "outcomes": list(e.outcomes), "by": list(e.by), "level": e.level,
                   "correction": e.correction},
        "migration": None if m is None else {
            "counts": frame_document(m.counts), "shares": frame_document(m.shares),
            "campaign_id": m.campaign_id, "scheme": m.scheme, "control": m.control,
            "before": _value(m.before), "after": _value(m.after), "level": m.level,
            "lapsed_segments": list(m.lapsed_segments)},
    }


def campaign_from_document(doc: dict[str, Any]) -> Any:
    """The :class:`segflow.campaigns.CampaignReport` of a stored document."""
    from segflow.campaigns._effect import EffectReport
    from segflow.campaigns._migration import MigrationLift
    from segflow.campaigns._report import CampaignReport

    e = doc["effect"]
    effect = EffectReport(document_frame(e["table"]), control=e["control"], arms=e["arms"],
                          outcomes=e["outcomes"], by=e["by"], level=e["level"], correction=e["correction"])
    m = doc["migration"]
    migration = None if m is None else MigrationLift(
        document_frame(m["counts"]), document_frame(m["shares"]), campaign_id=m["campaign_id"],
        scheme=m["scheme"], control=m["control"], before=_revive(m["before"]), after=_revive(m["after"]),
        level=m["level"], lapsed_segments=m["lapsed_segments"])
    return CampaignReport(doc["campaign_id"], doc["scheme"], doc["window_days"], _revive(doc["start"]),
                          _revive(doc["end"]), effect, migration, list(doc["notes"]))


def overview_document(store: Store) -> dict[str, Any]:
    """:func:`segflow.report._queries.revenue_totals` as a document."""
    from segflow.report._queries import revenue_totals

    return {k: _value(v) for k, v in revenue_totals(store).items()}


def overview_from_document(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _revive(v) for k, v in doc.items()}


def forecast_document(store: Store, schemes: list[str]) -> dict[str, Any]:
    """:func:`segflow.migration.segment_forecast` (default options) of every scheme with two
    or more snapshots, from the stored ``summary_transitions`` (read inside the run's
    transaction): per scheme ``{"last", "meta", "frame"}``, keyed by scheme in name order
    (whatever the order of ``schemes``: the DuckDB run passes them sorted, the Spark run in
    the settings' order; one text either way)."""
    from segflow.migration import segment_forecast
    from segflow.summaries._read import pooled_table

    out: dict[str, Any] = {}
    for scheme in sorted(schemes):
        dates = [r[0] for r in store.raw.execute(
            "SELECT DISTINCT snapshot_date FROM summary_segments WHERE scheme = ? ORDER BY 1", [scheme]).fetchall()]
        if len(dates) < 2:
            continue
        result = segment_forecast(pooled_table(store, scheme, dates))
        out[scheme] = {"last": dates[-1].isoformat(), "meta": result.meta,
                       "frame": frame_document(result.to_pandas())}
    return out


def stored_forecast(doc: dict[str, Any], scheme: str, last: dt.date) -> Any:
    """The stored :class:`~segflow.migration.SegmentForecast` of ``scheme`` when it starts at
    ``last`` (else None; also for a document of a segflow before the one definition, which
    stored no ``meta``: the caller computes it then)."""
    from segflow.migration import SegmentForecast

    item = doc.get(scheme)
    if item is None or item["last"] != last.isoformat() or "meta" not in item:
        return None
    return SegmentForecast(document_frame(item["frame"]), item["meta"])


def _saved_model(store: Store, snapshot: dt.date) -> Any:
    """The BG/NBD model saved by the run at ``snapshot`` (``model_params``), or None."""
    from segflow.models._saved import models_from_document

    if "model_params" not in store.tables():
        return None
    t = store.table("model_params")
    rows = t.filter((t.snapshot_date == snapshot) & (t.model == CLV_MODEL)).select("params") \
        .limit(1).to_pyarrow()["params"].to_pylist()
    return models_from_document(json.loads(rows[0]))["count"] if rows else None


def _latest(table: ibis.Table, column: str = "snapshot_date") -> dt.date | None:
    """``max(column)`` of ``table``, computed by its engine."""
    return table[column].max().to_pyarrow().as_py()


def result_documents(store: Store, *, campaign_scheme: str | None, names: tuple[str, ...] = RESULTS,
                     schemes: list[str] | None = None,
                     clv_triples: tuple[dt.date, pd.DataFrame] | None = None,
                     clv_days: ibis.Table | None = None,
                     clv_states: Any = None,
                     campaigns_reuse: tuple[dt.datetime, Collection[dt.date]] | None = None,
                     ) -> list[tuple[str, dt.date | None, str]]:
    """Compute the stored results ``names`` from the store: ``(name, snapshot, JSON)`` rows.

    The CLV diagnostics are computed at the latest snapshot with CLV scores (none without
    scores); the campaigns for ``campaign_scheme``; the forecasts of ``schemes`` (none when
    None) from the stored aggregates, so after those are written. ``clv_triples``: ``(snapshot,
    compressed BTYD summary)`` of the run's CLV stage, used when it is at the diagnostics'
    snapshot; ``clv_days``: the stage's cached purchase days (read by the diagnostics at any
    snapshot: they hold every day); ``clv_states``: the stage's BTYD states (read by the
    diagnostics at their snapshot); ``campaigns_reuse``: see :func:`campaign_documents`."""

    rows: list[tuple[str, dt.date | None, str]] = []
    if "clv_diagnostics" in names:
        scores = store.table("customer_scores")
        clv_date = _latest(scores.filter(scores.model == CLV_MODEL))
        if clv_date is not None:
            try:
                triples = clv_triples[1] if clv_triples and clv_triples[0] == clv_date else None
                doc = clv_diagnostics_document(store.table("transactions"), clv_date,
                                               model=_saved_model(store, clv_date), triples=triples,
                                               days=clv_days, states=clv_states)
            except SegflowError as exc:  # the holdout says which diagnostics failed
                doc = {"error": str(exc), "holdout_weeks": HOLDOUT_WEEKS}
            rows.append(("clv_diagnostics", clv_date, dumps(doc)))
    latest = _latest(store.table("segment_snapshots")) if "segment_snapshots" in store.tables() \
        else None
    if "campaigns" in names:
        import warnings

        with warnings.catch_warnings():  # skipped campaigns: the run's own warnings say why
            warnings.simplefilter("ignore")
            docs = campaign_documents(store, campaign_scheme, reuse=campaigns_reuse)
        rows.append(("campaigns", latest, dumps({"scheme": campaign_scheme, "reports": docs})))
    if "overview" in names:
        rows.append(("overview", latest, dumps(overview_document(store))))
    if "forecasts" in names and schemes is not None:
        rows.append(("forecasts", latest, dumps(forecast_document(store, schemes))))
    return rows


def store_results(con: Any, rows: list[tuple[str, dt.date | None, str]], run_id: str) -> int:
    """Replace the stored documents of the names in ``rows`` (inside the caller's transaction)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for name, snapshot, text in rows:
        con.execute("DELETE FROM summary_results WHERE name = ?", [name])
        con.execute("INSERT INTO summary_results VALUES (?, ?, ?, ?, ?)", [name, snapshot, text, run_id, now])
    return len(rows)


def campaign_scheme(schemes: list[str]) -> str | None:
    """The scheme of the report's campaign read-outs: ``lifecycle``, else the first one
    (``schemes`` in the project file's order)."""
    return "lifecycle" if "lifecycle" in schemes else (schemes[0] if schemes else None)


def add_missing_results(store: Store, run_id: str, scheme: str | None) -> bool:
    """Store the results that the stored aggregates lack (a run of an older segflow wrote
    them), when those aggregates still describe the stored assignments; True when something
    was written. Assignments and the other aggregates are left as they are."""
    from segflow.summaries._read import summaries_run

    missing = missing_results(store)
    if not missing or summaries_run(store) is None:
        return False
    schemes = [r[0] for r in store.raw.execute("SELECT DISTINCT scheme FROM summary_segments ORDER BY 1").fetchall()]
    rows = result_documents(store, campaign_scheme=scheme, names=missing, schemes=schemes)
    with store.transaction() as con:
        store_results(con, rows, run_id)
    return True


def missing_results(store: Store) -> tuple[str, ...]:
    """The result names not stored yet (a store whose aggregates an older segflow wrote),
    and ``forecasts`` when its document is of a segflow before the one forecast definition
    (no ``meta``: the report recomputes those, so the next run stores them again)."""
    if "summary_results" not in store.tables():
        return ()
    have = {r[0] for r in store.raw.execute("SELECT DISTINCT name FROM summary_results").fetchall()}
    forecasts = stored_result(store, "forecasts") if "forecasts" in have else None
    if forecasts is not None and any("meta" not in item for item in forecasts[1].values()):
        have.discard("forecasts")
    return tuple(n for n in RESULTS if n not in have)


def stored_result(store: Store, name: str) -> tuple[dt.date | None, Any] | None:
    """``(snapshot, document)`` of a stored result, or None when it is not stored."""
    if "summary_results" not in store.tables():
        return None
    row = store.raw.execute("SELECT snapshot_date, document FROM summary_results WHERE name = ?",
                            [name]).fetchone()
    if row is None:
        return None
    return row[0], json.loads(row[1])
