"""Data of the campaign, forecast, audience and profile pages (and their JSON twins).

Aggregates are read from the run's stored aggregates when they are current
(:func:`segflow.server._views.stored`: the forecast's per-pair counts, the profiles at the
latest features snapshot, the campaign read-outs by the campaigns' scheme), else computed,
and cached per copy of the store (:meth:`Generation.cached`); audiences are computed per
request (they are customer-level and depend on the request's filters). The CLV moved per
transition cell is computed: the stored cells sum the CLV of the later snapshot's customers
only and keep no count of scored customers (see docs/server.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from fastapi import HTTPException

from segflow._result import jsonable
from segflow.errors import SegflowError
from segflow.project import Project
from segflow.server import _views
from segflow.server._replica import Generation

CLV_MODEL = "bgnbd_gg"


# -- campaigns -------------------------------------------------------------------------------
def campaigns(project: Project, gen: Generation) -> pd.DataFrame:
    """Every campaign with exposures: first and last exposure, customers per arm."""
    def compute() -> pd.DataFrame:
        return project.store.raw.execute(
            "SELECT campaign_id, min(ts) AS first_exposure, max(ts) AS last_exposure, "
            "count(DISTINCT customer_id) FILTER (WHERE lower(coalesce(arm, '')) NOT IN ('control', 'holdout')) "
            "AS treated_customers, count(DISTINCT customer_id) FILTER (WHERE lower(arm) IN ('control', 'holdout')) "
            "AS control_customers FROM campaign_exposures WHERE campaign_id IS NOT NULL "
            "GROUP BY campaign_id ORDER BY first_exposure, campaign_id").df()
    return gen.cached(("campaigns",), compute).copy()


def campaign_lift(project: Project, gen: Generation, campaign_id: str, scheme: str | None) -> Any:
    """The campaign's read-out: lift of purchase rate and revenue by segment of ``scheme``
    (default lifecycle, else the first scheme) against the control arm."""
    from segflow.campaigns import campaign_report

    if campaign_id not in set(campaigns(project, gen)["campaign_id"]):
        raise HTTPException(status_code=404, detail=f"no exposures stored for campaign {campaign_id!r}")
    names = [s["scheme"] for s in _views.schemes(project, gen)]
    scheme = scheme or ("lifecycle" if "lifecycle" in names else (names[0] if names else None))
    if scheme is not None and scheme not in names:
        raise HTTPException(status_code=404, detail=f"no assignments stored for scheme {scheme!r}")

    def compute() -> Any:
        report = _stored_campaign(project, gen, campaign_id, scheme)
        if report is not None:
            return report
        if gen.warehouse:  # a copy of a Spark warehouse: no transactions to compute from
            _not_stored(project, campaign_id, scheme)
        try:
            return campaign_report(project.store, campaign_id, scheme)
        except SegflowError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
    return gen.cached(("campaign", campaign_id, scheme), compute), scheme


def _stored_campaign(project: Project, gen: Generation, campaign_id: str, scheme: str | None) -> Any:
    """The campaign's read-out the run stored (``summary_results`` ``campaigns``: every
    campaign with a control arm, by the campaigns' scheme), when it is current and of
    ``scheme``; else None."""
    from segflow.summaries import campaign_from_document, stored_result

    if not _views.stored(project, gen):
        return None
    found = stored_result(project.store, "campaigns")
    if found is None or found[1].get("scheme") != scheme:
        return None
    for doc in found[1]["reports"]:
        if doc["campaign_id"] == campaign_id:
            return campaign_from_document(doc)
    return None


def _not_stored(project: Project, campaign_id: str, scheme: str | None) -> None:
    """Raise why a Spark warehouse's copy has no read-out of ``campaign_id`` by ``scheme``:
    404 when the run stored its read-outs by another scheme, else 422 (the campaign has no
    control arm, or the run skipped it)."""
    from segflow.summaries import stored_result

    found = stored_result(project.store, "campaigns")
    by = found[1].get("scheme") if found else None
    if by != scheme:
        raise HTTPException(status_code=404, detail=f"served from a Spark warehouse: campaign "
                            f"read-outs are stored by scheme {by!r} only")
    raise HTTPException(status_code=422, detail=f"no read-out of campaign {campaign_id!r} stored "
                        "by the warehouse's run (it has no control arm, or the run skipped it)")


# -- forecasts -------------------------------------------------------------------------------
def forecast(project: Project, gen: Generation, scheme: str, periods: int, *, start: str | None = None,
             end: dt.date | None = None, half_life: float | None = None, arrivals: str = "mean",
             ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`segflow.migration.segment_forecast` of ``scheme`` (the one definition the CLI,
    the report and the stored aggregates use) on the transition counts of the scheme's
    consecutive pairs of snapshots, with the given options (a bad one: 422): its table and
    its ``meta``."""
    from segflow.migration import segment_forecast
    from segflow.migration._forecast import parse_arrivals

    dates = _views.snapshots(project, gen, scheme)
    if len(dates) < 2:
        raise HTTPException(status_code=409, detail=f"scheme {scheme!r} has one snapshot; a forecast needs two")
    pooled = gen.cached(("forecast_pooled", scheme), lambda: _pooled(project, gen, scheme, dates))
    try:
        result = segment_forecast(pooled, periods=periods, start=start, end=end, half_life=half_life,
                                  arrivals=parse_arrivals(arrivals))
    except SegflowError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return result.to_pandas(), jsonable(result.meta)  # floats of 15 digits, as the rows and the CLI


def _pooled(project: Project, gen: Generation, scheme: str, dates: list[dt.date]) -> Any:
    """The pooled matrix of every consecutive pair of ``dates`` with its per-pair counts
    (``(new)`` and ``(gone)`` included): the run's stored cells (it stores every consecutive
    pair), else counted from the change rows."""
    if _views.stored(project, gen):
        from segflow.summaries import pooled_table

        pooled = pooled_table(project.store, scheme, dates)
        if pooled.pair_cells["pair"].nunique() == len(dates) - 1:
            return pooled
    from segflow.migration import pooled_transition_matrix

    return pooled_transition_matrix(project.store, scheme=scheme, dates=dates)


# -- profiles and value moved ----------------------------------------------------------------
#: The rank a profile gives the segments of a scheme without ranks (shown as none).
_UNRANKED = 10_000
#: The features a profile shows (those the store has), means and medians per segment.
PROFILE_FEATURES = ("recency_days", "frequency", "monetary", "monetary_12m", "orders_total", "avg_order_value",
                    "tenure_days")


def _stored_profile(project: Project, scheme: str, snapshot: dt.date, numeric: list[str],
                    valued: bool) -> pd.DataFrame | None:
    """The profile of :func:`profiles` (``profile_segments(numeric=numeric,
    categorical=[]).to_pandas()``) from the run's stored profile of ``scheme``, when it is
    at ``snapshot`` and holds every feature of ``numeric`` (else None). The stored one covers
    every feature; the suggested names and distinguishing features are those of ``numeric``
    (from the stored standardised differences, as ``profile_segments`` names them), the
    value the segment's sum of ``monetary`` (its stored mean times its size) when
    ``valued``."""
    from segflow.segments._naming import suggest_names
    from segflow.segments._profile import _top_features
    from segflow.summaries import profile_table

    row = project.store.raw.execute("SELECT any_value(snapshot_date) FROM summary_profile_segments WHERE scheme = ?",
                                    [scheme]).fetchone()
    if row is None or row[0] != snapshot:
        return None
    profile = profile_table(project.store, scheme)
    needed = [*numeric, *(["monetary"] if valued else [])]
    if profile is None or not set(needed) <= set(profile.means.columns):
        return None
    table = profile.table[["segment", "segment_rank", "size", "share"]].copy()
    if valued:
        value = profile.means["monetary"].to_numpy() * table["size"].to_numpy()
        total = value.sum()
        table["value"] = value
        table["revenue_share"] = value / total if total > 0 else np.nan
    else:
        table["value"] = np.nan
        table["revenue_share"] = np.nan
    std_diff = profile.std_diff[numeric]
    makeup = pd.DataFrame(columns=["segment", "column", "level", "count", "share", "base_share", "segment_rank"])
    table["suggested_name"] = suggest_names(std_diff, makeup)
    table["name"] = table["suggested_name"]
    table["distinguishing"] = [_top_features(std_diff.loc[s]) for s in table["segment"]]
    wide = table.set_index("segment")
    wide = wide.join(profile.means[numeric].add_prefix("mean__")).join(profile.medians[numeric].add_prefix("median__"))
    return wide.reset_index()


def profiles(project: Project, gen: Generation, scheme: str, snapshot: dt.date) -> pd.DataFrame | None:
    """Segment profiles (means of the main features, size, revenue share, suggested name) at
    ``snapshot``; None when the store keeps no features for that snapshot (only the latest)."""
    from segflow.segments import profile_segments

    def compute() -> pd.DataFrame | None:
        features = project.store.table("customer_features")
        numeric = [c for c in PROFILE_FEATURES if c in features.columns]
        if _views.stored(project, gen):
            frame = _stored_profile(project, scheme, snapshot, numeric, "monetary" in features.columns)
            if frame is not None:
                return frame
        features = features.filter(features.snapshot_date == snapshot).drop("snapshot_date")
        if int(features.count().execute()) == 0:
            return None
        assignments = project.store.table("segment_assignments")
        assignments = assignments.filter(assignments.scheme == scheme, assignments.snapshot_date == snapshot)
        # a scheme without ranks: segments by name, as the run's stored profiles list them
        assignments = assignments.select("customer_id", "segment",
                                         segment_rank=assignments.segment_rank.fill_null(_UNRANKED))
        frame = profile_segments(features, assignments, numeric=numeric, categorical=[]).to_pandas()
        if (frame["segment_rank"] == _UNRANKED).any():
            frame["segment_rank"] = frame["segment_rank"].astype(object).where(frame["segment_rank"] != _UNRANKED, None)
        return frame
    out = gen.cached(("profiles", scheme, snapshot), compute)
    return None if out is None else out.copy()


def value_moved(project: Project, gen: Generation, scheme: str, from_date: dt.date, to_date: dt.date) -> pd.DataFrame:
    """Per transition cell: customers and the sum and mean of the customers' latest 52-week
    CLV (model ``bgnbd_gg``), largest sum first. From the stored transition cells when they
    are current and ``to_date`` is the latest scored snapshot
    (:func:`segflow.summaries.value_moved_table`), else computed from the assignments."""
    def compute() -> pd.DataFrame:
        if _views.stored(project, gen):
            from segflow.summaries import value_moved_table

            out = value_moved_table(project.store, scheme, from_date, to_date)
            if out is not None:
                return out
        return project.store.raw.execute(
            "WITH a AS (SELECT customer_id, segment FROM segment_assignments WHERE scheme = ? AND snapshot_date = ?), "
            "b AS (SELECT customer_id, segment FROM segment_assignments WHERE scheme = ? AND snapshot_date = ?), "
            "c AS (SELECT customer_id, value FROM customer_scores WHERE model = ? AND score = 'clv' AND snapshot_date = "
            "      (SELECT max(snapshot_date) FROM customer_scores WHERE model = ?)) "
            "SELECT coalesce(a.segment, '(new)') AS from_segment, coalesce(b.segment, '(gone)') AS to_segment, "
            "count(*) AS customers, sum(c.value) AS clv_moved, avg(c.value) AS mean_clv "
            "FROM a FULL JOIN b USING (customer_id) LEFT JOIN c USING (customer_id) "
            "GROUP BY ALL ORDER BY clv_moved DESC NULLS LAST, from_segment, to_segment",
            [scheme, from_date, scheme, to_date, CLV_MODEL, CLV_MODEL]).df()
    return gen.cached(("value_moved", scheme, from_date, to_date), compute).copy()


# -- audiences -------------------------------------------------------------------------------
def holdout_flags(ids: list[str], share: float, seed: str) -> np.ndarray:
    """Deterministic hold-out: a customer is held out when the first 8 bytes of
    SHA-256(seed + ":" + id), read as a fraction of 2^64, fall below ``share``. The same id,
    seed and share always give the same flag, on any machine and in any audience."""
    limit = int(share * 2**64)
    prefix = (seed + ":").encode()
    return np.array([int.from_bytes(hashlib.sha256(prefix + i.encode()).digest()[:8], "big") < limit for i in ids],
                    dtype=bool)


def audience(project: Project, gen: Generation, *, scheme: str | None, segment: str | None,
             snapshot: dt.date | None, rule: str | None, holdout: float, seed: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The customers of a segment (``scheme`` + ``segment`` at ``snapshot``, default latest) or
    of a ``rule`` (the rule language over the features of the latest snapshot), with their
    12-month revenue, latest CLV and a hold-out flag. Raises 422 for a bad rule or request."""
    from segflow.segments._rules import compile_condition

    if bool(rule) == bool(scheme and segment):
        raise HTTPException(status_code=422, detail="give either scheme and segment, or rule (not both)")
    if rule and (scheme or snapshot):  # else dropped without a word
        raise HTTPException(status_code=422, detail="a rule selects over the latest snapshot's features: "
                            "give it without scheme or snapshot")
    if not 0 <= holdout < 1:
        raise HTTPException(status_code=422, detail=f"holdout must be a share in [0, 1), got {holdout}")
    features = project.store.table("customer_features")
    latest = project.store.raw.execute("SELECT max(snapshot_date) FROM customer_features").fetchone()[0]
    if rule:
        f = features.filter(features.snapshot_date == latest)
        try:
            condition = compile_condition(rule, f, rule="audience")
        except SegflowError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        try:
            ids = f.filter(condition).select("customer_id").to_pyarrow()["customer_id"].to_pylist()
        except duckdb.DataError as exc:  # arithmetic out of range, e.g. frequency * 9223372036854775807
            raise HTTPException(status_code=422, detail=f"rule {rule!r} cannot be evaluated: {exc}") from None
        source = {"rule": rule, "snapshot": latest}
    else:  # an unknown scheme, snapshot or segment (a typo) is a 404, as in the customer search
        snapshot = _views.segment_snapshot(project, gen, scheme, segment, snapshot)
        ids = [r[0] for r in project.store.raw.execute(
            "SELECT customer_id FROM segment_assignments WHERE scheme = ? AND snapshot_date = ? AND segment = ?",
            [scheme, snapshot, segment]).fetchall()]
        source = {"scheme": scheme, "segment": segment, "snapshot": snapshot}
    project.store.raw.execute("CREATE OR REPLACE TEMP TABLE _audience AS SELECT unnest(?::VARCHAR[]) AS customer_id", [ids])
    frame = project.store.raw.execute(
        "SELECT a.customer_id, f.monetary_12m AS revenue_12m, c.value AS clv "
        "FROM _audience a LEFT JOIN customer_features f ON f.customer_id = a.customer_id AND f.snapshot_date = ? "
        "LEFT JOIN customer_scores c ON c.customer_id = a.customer_id AND c.model = ? AND c.score = 'clv' "
        "AND c.snapshot_date = (SELECT max(snapshot_date) FROM customer_scores WHERE model = ?) "
        "ORDER BY a.customer_id", [latest, CLV_MODEL, CLV_MODEL]).df()
    project.store.raw.execute("DROP TABLE IF EXISTS _audience")
    frame["holdout"] = holdout_flags(frame["customer_id"].tolist(), holdout, seed)
    for i, (key, value) in enumerate(source.items()):
        frame.insert(1 + i, key, value)
    summary = {
        **source, "customers": len(frame), "holdout_customers": int(frame["holdout"].sum()),
        "target_customers": int((~frame["holdout"]).sum()), "holdout_share": holdout, "seed": seed,
        "revenue_12m": float(frame["revenue_12m"].sum()) if len(frame) else 0.0,
        # None when no customer has a CLV (a model that could not be fitted), not 0
        "clv_total": float(frame["clv"].sum()) if frame["clv"].notna().any() else None,
        "clv_mean": float(frame["clv"].mean()) if frame["clv"].notna().any() else None,
    }
    return frame, summary
