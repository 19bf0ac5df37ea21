"""Compute and store the run's aggregates (see :mod:`segflow.summaries`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import ibis
import pandas as pd

from segflow.store import Store
from segflow.summaries._packing import Packing
from segflow.summaries._revenue import revenue_at_snapshots

#: The CLV model whose scores the aggregates read (written by ``segflow run``).
CLV_MODEL = "bgnbd_gg"
NEW, GONE = "(new)", "(gone)"
TABLES = ("summary_segments", "summary_transitions", "summary_profiles", "summary_audit")


def cell_direction(row: object) -> str:
    """``stay``, ``new``, ``gone``, ``up``/``down`` (to a better/worse ``segment_rank``) or
    ``move`` (unranked or equal ranks) for a row with ``from_segment, to_segment, from_rank,
    to_rank``."""
    frm, to = row.from_segment, row.to_segment  # type: ignore[attr-defined]
    if frm == to:
        return "stay"
    if frm == NEW:
        return "new"
    if to == GONE:
        return "gone"
    fr, tr = row.from_rank, row.to_rank  # type: ignore[attr-defined]
    if pd.isna(fr) or pd.isna(tr) or fr == tr:
        return "move"
    return "down" if tr > fr else "up"


def snapshot_pairs(dates: Sequence[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """The pairs summarised: every consecutive pair, then every earlier snapshot with the
    latest (each pair once), oldest first."""
    d = sorted(dates)
    pairs = [(d[k], d[k + 1]) for k in range(len(d) - 1)]
    pairs += [(d[k], d[-1]) for k in range(len(d) - 2)]
    return pairs


def _assignments(store: Store, scheme: str) -> ibis.Table:
    a = store.table("segment_assignments")
    return a.filter(a.scheme == scheme).select("snapshot_date", "customer_id", "segment", "segment_rank")


def _scores(store: Store) -> ibis.Table:
    """One row per (snapshot, customer) with CLV scores: p_alive, expected_purchases, clv."""
    s = store.table("customer_scores")
    s = s.filter(s.model == CLV_MODEL)
    return s.group_by(s_date=s.snapshot_date, s_cid=s.customer_id).agg(
        p_alive=s.value.max(where=s.score == "p_alive"),
        expected_purchases=s.value.max(where=s.score == "expected_purchases"),
        clv=s.value.max(where=s.score == "clv"),
    )


def _scored_dates(store: Store) -> set[dt.date]:
    rows = store.raw.execute(
        "SELECT DISTINCT snapshot_date FROM customer_scores WHERE model = ?", [CLV_MODEL]
    ).fetchall()
    return {r[0] for r in rows}


def _add_shares(out: pd.DataFrame, by: list[str], scored: Collection[dt.date]) -> None:
    """Add ``share``, ``revenue_share``, ``mean_clv`` and ``clv_share`` to segment rows (the
    shares within each group of ``by``), and blank the CLV columns of snapshots without
    stored scores (in place)."""
    g = out.groupby(by)
    out["share"] = out["customers"] / g["customers"].transform("sum")
    tot_rev = g["revenue_12m"].transform("sum")
    out["revenue_share"] = (out["revenue_12m"] / tot_rev).where(tot_rev != 0, 0.0)
    tot_clv = g["clv"].transform("sum")
    out["mean_clv"] = out["clv"] / out["customers"]
    out["clv_share"] = (out["clv"] / tot_clv).where(tot_clv != 0, 0.0)
    no_scores = ~pd.to_datetime(out["snapshot_date"]).isin(pd.to_datetime(sorted(scored)))
    out.loc[no_scores, ["scored_customers", "mean_p_alive", "expected_purchases", "clv", "mean_clv",
                        "clv_share"]] = None


def profile_summary(store: Store, scheme: str, *, rule_based: bool,
                    snapshot: dt.date | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segment profiles of ``scheme`` at the snapshot of ``customer_features`` (the latest;
    ``snapshot`` when the caller read it: :func:`segflow.summaries._profiles.features_snapshot`):
    per segment its display ``name`` (the rule name for rule-based schemes; a suggested name
    for clusters) and distinguishing features, and per segment and feature the mean, median
    and standardised difference from the base (see :func:`segflow.segments.profile_segments`).
    Empty frames when there are no features or no assignments at that snapshot."""
    from segflow.errors import SegflowError
    from segflow.segments import profile_segments
    from segflow.summaries._profiles import features_snapshot

    if "customer_features" not in store.tables():
        return pd.DataFrame(), pd.DataFrame()
    snapshot = snapshot if snapshot is not None else features_snapshot(store)
    if snapshot is None:
        return pd.DataFrame(), pd.DataFrame()
    features = store.table("customer_features")
    features = features.filter(features.snapshot_date == snapshot).drop("snapshot_date")
    a = _assignments(store, scheme)
    a = a.filter(a.snapshot_date == snapshot).select(
        "customer_id", "segment", segment_rank=a.segment_rank.fill_null(10_000)
    )
    names = None
    if rule_based:  # named by their rules (clusters: no query; no segment: empty, below)
        segs = [str(s) for s in a.select("segment").distinct().execute()["segment"]]
        if not segs:
            return pd.DataFrame(), pd.DataFrame()
        names = {s: s for s in segs}
    try:
        # the categorical make-up only feeds the suggested names of clusters
        prof = profile_segments(features, a, names=names, categorical=[] if rule_based else None)
    except SegflowError:
        return pd.DataFrame(), pd.DataFrame()
    seg = prof.table[["segment", "name", "suggested_name", "distinguishing"]].copy()
    if rule_based:  # rule segments are named by their rules: no cluster-style suggestion
        seg["suggested_name"] = None
    seg.insert(0, "snapshot_date", snapshot)
    seg.insert(0, "scheme", scheme)
    long = prof.means.stack(future_stack=True).rename("mean").to_frame()
    long["median"] = prof.medians.stack(future_stack=True)
    long["std_diff"] = prof.std_diff.stack(future_stack=True)
    long = long.rename_axis(["segment", "feature"]).reset_index()
    base = prof.base.T
    long["base_mean"] = long["feature"].map(base["mean"])
    long["base_std"] = long["feature"].map(base["std"])
    long["base_median"] = long["feature"].map(base["median"])
    long.insert(0, "snapshot_date", snapshot)
    long.insert(0, "scheme", scheme)
    return seg, long


def profile_frames(store: Store, schemes: Sequence[str], rule_based: Mapping[str, bool],
                   ) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """The rows of ``summary_profile_segments`` and ``summary_profiles`` of every scheme (one
    frame per scheme each; empty frames for a scheme without assignments at the features'
    snapshot): rule-based schemes at once (:func:`segflow.summaries._profiles.rule_profiles`),
    cluster schemes one by one (:func:`profile_summary`). Ibis expressions only: ``store`` is
    a DuckDB store or a Spark warehouse's run (``segflow.warehouse``)."""
    from segflow.summaries._profiles import features_snapshot, rule_profiles

    segs, longs = [], []
    # the features' snapshot read once, for every scheme
    snapshot = features_snapshot(store) if "customer_features" in store.tables() else None
    _, ruled = rule_profiles(store, [s for s in schemes if rule_based[s]], snapshot=snapshot)
    for scheme in schemes:
        if rule_based[scheme]:
            seg, long = ruled.get(scheme, (pd.DataFrame(), pd.DataFrame()))
        else:
            seg, long = profile_summary(store, scheme, rule_based=False, snapshot=snapshot)
        segs.append(seg)
        longs.append(long)
    return segs, longs


def write_aggregates(store: Store, run_id: str, *, schemes: Sequence[str] | None = None,
                     kinds: dict[str, str] | None = None, audit: bool = True,
                     changed: Mapping[str, Collection[dt.date]] | None = None,
                     results: bool = True, campaign_scheme: str | None = None,
                     clv_triples: tuple[dt.date, pd.DataFrame] | None = None,
                     clv_days: ibis.Table | None = None,
                     clv_states: Any = None,
                     unchanged_before: dt.datetime | None = None) -> dict[str, int]:
    """Compute the report's aggregates from the store and replace the stored ones, in one
    transaction: ``summary_segments``, ``summary_transitions``, ``summary_profiles`` (with
    the per-segment names and distinguishing features in ``summary_profile_segments``) and
    ``summary_audit`` (see :mod:`segflow.summaries` for definitions and units).

    Segments are read through the ``segment_assignments`` table or view only.

    Incremental with ``changed``: the segment rows of a snapshot and the transition rows of a
    pair are computed again only when a date of theirs is in ``changed[scheme]``, is not
    stored yet, or its CLV scores appeared or disappeared since they were stored; the other
    stored rows are kept (rows of snapshots, pairs and schemes that no longer exist are
    deleted). The result equals a full rewrite's. Profiles (one snapshot), the audit and the
    model results are always computed again. Every row ends up carrying ``run_id``.

    Parameters
    ----------
    store : Store
    run_id : str
        The run the aggregates belong to (stored in every row).
    schemes : sequence of str, optional
        Default: every scheme with stored assignments.
    kinds : dict, optional
        Scheme -> kind (``"rules"``, ``"rfm"``, ``"cluster"`` ...). Segments of every kind but
        ``"cluster"`` are named by their rules; only clusters get suggested names. A scheme
        missing here counts as rule-based.
    audit : bool, default=True
        Also store the data-quality audit (:func:`segflow.quality.audit`), unless the stored
        one is current (:func:`audit_is_current`: computed after the last load).
    changed : mapping of scheme to dates, optional
        The snapshots whose assignments, revenue or scores this run may have changed
        (``segflow run``: the snapshots it computed, and the latest, which it scores).
        ``None`` (default): compute everything again.
    results : bool, default=True
        Also store the model results the report shows in ``summary_results`` (CLV
        diagnostics, campaign read-outs, overview totals; :mod:`segflow.summaries._results`).
    campaign_scheme : str, optional
        The scheme of the campaign read-outs (default: ``lifecycle`` when summarised, else
        the first scheme).
    clv_triples : (date, DataFrame), optional
        The distinct (x, t_x, T) triples with ``count`` of the BTYD summary at that snapshot,
        as the run's CLV stage computed them (``score_clv(keep=...)``): the CLV diagnostics
        at that snapshot read them instead of summarising the transactions again.
    clv_days : ibis.Table, optional
        The CLV stage's cached purchase days of every day (``score_clv(keep=...)``), which
        the CLV diagnostics read instead of the transactions' lines.
    clv_states : segflow.models._btyd_state.BTYDStates, optional
        The CLV stage's BTYD states (``score_clv(keep=...)``): the diagnostics' holdout
        summary and tracking curves read them, when they are at the diagnostics' dates.
    unchanged_before : datetime, optional
        With ``changed``: no input row with ``ts`` before it changed since the stored
        aggregates were written (``segflow run``: its latest snapshot not computed again).
        The campaign read-outs that read nothing newer, at snapshots not in ``changed``, are
        kept (:func:`segflow.summaries._results.campaign_documents`).

    Returns
    -------
    dict
        Rows written (computed) per table.
    """
    dates_of = _assigned_dates(store)
    schemes = [s for s in (schemes if schemes is not None else sorted(dates_of)) if s in dates_of]
    rule_based = {s: (kinds or {}).get(s) != "cluster" for s in schemes}
    scored = _scored_dates(store)
    plan = {s: _plan(store, s, dates_of[s], scored, None if changed is None else changed.get(s, ()))
            for s in schemes}
    frames: dict[str, list[pd.DataFrame]] = {t: [] for t in (*TABLES, "summary_profile_segments")}
    needed = sorted({d for s in schemes for d in plan[s].dates}
                    | {d for s in schemes for pair in plan[s].pairs for d in pair})
    amounts = None
    if needed:
        from segflow.summaries._amounts import prepare

        # the revenue read from the period amounts (stored and extended, or all computed)
        amounts = prepare(store, sorted({d for s in schemes for d in dates_of[s]}),
                          None if changed is None else unchanged_before)
        try:
            segments, transitions = _scheme_rows(store, schemes, plan, needed, scored,
                                                 amounts=None if amounts is None else amounts.table)
        except BaseException:
            if amounts is not None:
                amounts.release()
            raise
        frames["summary_segments"].append(segments)
        frames["summary_transitions"].append(transitions)
    try:
        return _compute_and_store(store, run_id, schemes, frames, plan, dates_of, rule_based, audit=audit,
                                  changed=changed, results=results, campaign_scheme=campaign_scheme,
                                  clv_triples=clv_triples, clv_days=clv_days,
                                  clv_states=clv_states, unchanged_before=unchanged_before,
                                  amounts=amounts)
    finally:
        if amounts is not None:
            amounts.release()


def _compute_and_store(store: Store, run_id: str, schemes: Sequence[str], frames: dict[str, list[pd.DataFrame]],
                       plan: dict[str, _Plan], dates_of: dict[str, list[dt.date]], rule_based: dict[str, bool],
                       *, audit: bool, changed: Mapping[str, Collection[dt.date]] | None, results: bool,
                       campaign_scheme: str | None, clv_triples: tuple[dt.date, pd.DataFrame] | None,
                       clv_days: ibis.Table | None, clv_states: Any,
                       unchanged_before: dt.datetime | None,
                       amounts: object | None) -> dict[str, int]:
    """The rest of :func:`write_aggregates` once the segment and transition rows are in
    ``frames``: profiles, audit, results, then every table written in one transaction (the
    period amounts ``amounts`` too, :class:`segflow.summaries._amounts.Amounts`)."""
    frames["summary_profile_segments"], frames["summary_profiles"] = profile_frames(
        store, schemes, rule_based)
    keep_audit = not audit or audit_is_current(store)
    if not keep_audit:
        frames["summary_audit"].append(_audit_frame(store))
    documents = []
    if results and "summary_results" in store.tables():
        from segflow.summaries._results import RESULTS, result_documents

        if campaign_scheme is None and schemes:
            campaign_scheme = "lifecycle" if "lifecycle" in schemes else schemes[0]
        reuse = None
        if changed is not None and unchanged_before is not None and campaign_scheme is not None:
            reuse = (unchanged_before, changed.get(campaign_scheme, ()))
        documents = result_documents(store, campaign_scheme=campaign_scheme,
                                     names=tuple(n for n in RESULTS if n != "forecasts"),
                                     clv_triples=clv_triples, clv_days=clv_days,
                                     clv_states=clv_states,
                                     campaigns_reuse=reuse)
    written: dict[str, int] = {}
    with store.transaction() as con:
        if amounts is not None:
            written["summary_amounts"] = amounts.write(store, con)  # type: ignore[attr-defined]
        if documents:
            from segflow.summaries._results import store_results

            written["summary_results"] = store_results(con, documents, run_id)
        for table, parts in frames.items():
            if table == "summary_segments":
                _delete_stale(con, table, "snapshot_date", schemes,
                              {s: (dates_of[s], plan[s].dates) for s in schemes})
            elif table == "summary_transitions":
                _delete_stale_pairs(con, schemes, {s: plan[s] for s in schemes}, dates_of)
            elif not (table == "summary_audit" and keep_audit):
                con.execute(f"DELETE FROM {table}")
            con.execute(f"UPDATE {table} SET run_id = ?", [run_id])
            parts = [f for f in parts if not f.empty]
            if not parts:
                written[table] = 0
                continue
            frame = pd.concat(parts, ignore_index=True)
            frame["run_id"] = run_id
            written[table] = store.append(table, frame, con=con)
        if results and "summary_results" in store.tables():
            from segflow.summaries._results import result_documents, store_results

            # the forecasts read the aggregates just written (same connection, same transaction)
            store_results(con, result_documents(store, campaign_scheme=None, names=("forecasts",),
                                                schemes=list(schemes)), run_id)
    return written


def _assigned_dates(store: Store) -> dict[str, list[dt.date]]:
    """Per scheme, the snapshot dates with at least one assignment (ascending): the distinct
    dates of ``segment_assignments``, read from the spells' distinct ranges (a few hundred
    rows) instead of the view's expansion to every customer and snapshot."""
    if {"segment_spells", "segment_snapshots"} <= set(store.tables()):
        query = """SELECT s.scheme, list(DISTINCT s.snapshot_date ORDER BY s.snapshot_date)
            FROM segment_snapshots AS s
            JOIN (SELECT DISTINCT scheme, valid_from, coalesce(valid_to, DATE '9999-12-31') AS valid_to
                  FROM segment_spells) AS sp
              ON sp.scheme = s.scheme AND s.snapshot_date >= sp.valid_from AND s.snapshot_date < sp.valid_to
            GROUP BY s.scheme"""
    else:
        query = ("SELECT scheme, list(DISTINCT snapshot_date ORDER BY snapshot_date) "
                 "FROM segment_assignments GROUP BY scheme")
    return {s: list(d) for s, d in store.raw.execute(query).fetchall()}


def _scheme_rows(store: Store, schemes: Sequence[str], plan: dict[str, _Plan],
                 needed: Sequence[dt.date], scored: set[dt.date],
                 *, ordered_keys: bool = False, amounts: ibis.Table | None = None,
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The segment and transition rows of every scheme's plan, in one pass on integer keys
    (:mod:`segflow.summaries._cells`), with shares and the CLV columns only where scores are
    stored. ``ordered_keys``: see :func:`segflow.summaries._cells.keys` (True on Spark).
    ``amounts``: the period amounts of the transactions at the boundaries of every snapshot
    (:mod:`segflow.summaries._amounts`), which the revenue reads instead of the lines."""
    from segflow.summaries import _cells

    names = store.tables()
    catalogue = store.table("segment_spells" if "segment_spells" in names else "segment_assignments")
    keyed = _cells.keys(catalogue, ordered=ordered_keys).cache()
    coded = _cells.codes(catalogue, schemes).cache()
    latest = max(needed)
    spelled = "segment_spells" in names and "segment_snapshots" in names
    try:
        code_table = coded.execute()
        if spelled and all(set(plan[s].dates) <= {latest} and all(t == latest for _f, t in plan[s].pairs)
                           for s in schemes):
            # one new month: the latest snapshot's rows and the pairs ending there, from the
            # change rows (no states at every earlier snapshot)
            seg, tr = _latest_rows(store, schemes, plan, needed, keyed, coded, code_table, amounts)
        else:
            dates = {s: plan[s].dates for s in schemes}
            pairs = {s: plan[s].pairs for s in schemes}
            packing = Packing.of(code_table, schemes)
            n_keys = int(keyed.count().execute())
            seg_cells, tr_cells = [], []
            # by chunks of customers (the keys are 0 .. n_keys - 1): every snapshot's states of
            # all customers at once outgrew a 24 GB machine at 10M customers (session 35)
            for lo in range(0, max(n_keys, 1), AGGREGATE_CHUNK_CUSTOMERS):
                part = keyed.filter(keyed.k.between(lo, lo + AGGREGATE_CHUNK_CUSTOMERS - 1)).view()
                states = _chunk_states(store, schemes, needed, part, coded, packing, spelled, amounts).cache()
                try:
                    seg_cells.append(_cells.segment_cells(states, packing, schemes, dates))
                    tr_cells.append(_cells.transition_cells(states, packing, schemes, pairs))
                finally:
                    states.release()
            seg = _cells.finish_segments(_cells.add_cells(seg_cells, _cells.SEGMENT_KEY), code_table,
                                         schemes)
            tr = _cells.finish_transitions(_cells.add_cells(tr_cells, _cells.TRANSITION_KEY), code_table,
                                           schemes, pairs)
    finally:
        keyed.release()
        coded.release()
    if not seg.empty:
        _add_shares(seg, ["scheme", "snapshot_date"], scored)
    if not tr.empty:
        tr["scored_customers"] = tr["scored_customers"].astype("Int64")
        tr.loc[~pd.to_datetime(tr["to_date"]).isin(pd.to_datetime(sorted(scored))),
               ["clv", "scored_customers"]] = None
    return seg, tr


#: Customers whose states :func:`_scheme_rows` builds at once for a run of several
#: snapshots (their cells are then added up): about 1 GB of DuckDB memory per million
#: customers and snapshot.
AGGREGATE_CHUNK_CUSTOMERS = 1_000_000


def _chunk_states(store: Store, schemes: Sequence[str], needed: Sequence[dt.date], keyed: ibis.Table,
                  coded: ibis.Table, packing: Packing, spelled: bool,
                  amounts: ibis.Table | None) -> ibis.Table:
    """The :func:`segflow.summaries._cells.states` of the customers of ``keyed`` (a chunk of
    the keys) at every snapshot of ``needed``: their assignments (codes packed by
    ``packing``), revenue and scores only."""
    from segflow.summaries import _cells

    if spelled:
        rows = _cells.coded_spells(store.table("segment_spells"), store.table("segment_snapshots"),
                                   keyed, coded, needed)
    else:
        rows = _cells.coded_rows(store.table("segment_assignments"), keyed, coded, needed)
    ids = keyed.select(c_id=keyed.customer_id)
    transactions = store.table("transactions")
    transactions = transactions.semi_join(ids, transactions.customer_id == ids.c_id)
    if amounts is not None:
        amounts = amounts.semi_join(ids, amounts.customer_id == ids.c_id)
    revenue = revenue_at_snapshots(transactions, needed, amounts=amounts)
    return _cells.states(rows, revenue, _scores(store), keyed, packing, needed)


def _latest_rows(store: Store, schemes: Sequence[str], plan: dict[str, _Plan], needed: Sequence[dt.date],
                 keyed: ibis.Table, coded: ibis.Table, code_table: pd.DataFrame,
                 amounts: ibis.Table | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segment rows at the latest of ``needed`` and the transitions of pairs ending there
    (every plan holds no other), from the latest states and the change rows
    (:func:`segflow.summaries._cells.ending_transitions`)."""
    from segflow.summaries import _cells

    latest = max(needed)
    spells = store.table("segment_spells")
    rows = _cells.coded_spells(spells, store.table("segment_snapshots"), keyed, coded, [latest])
    transactions = store.table("transactions")
    if amounts is not None:  # the period amounts instead of every line
        from segflow.summaries import _amounts

        revenue = _amounts.revenue_at(amounts, latest)
        buckets = _amounts.bucket_amounts(amounts, keyed, needed)
    else:
        revenue = revenue_at_snapshots(transactions, [latest])
        buckets = _cells.bucket_amounts(transactions, keyed, needed)
    states = _cells.states(rows, revenue, _scores(store), keyed, Packing.of(code_table, schemes),
                           [latest]).cache()
    amounts = buckets.cache()  # read by several queries
    try:
        seg = _cells.segment_rows(states, code_table, schemes, {s: plan[s].dates for s in schemes})
        tr = _cells.ending_transitions(_cells.spell_codes(spells, keyed, coded), states, amounts,
                                       code_table, schemes, {s: plan[s].pairs for s in schemes})
    finally:
        states.release()
        amounts.release()
    return seg, tr


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What to compute for one scheme: snapshot dates of segment rows, pairs of transitions."""

    dates: list[dt.date]
    pairs: list[tuple[dt.date, dt.date]]


def _plan(store: Store, scheme: str, dates: Sequence[dt.date], scored: set[dt.date],
          changed: Collection[dt.date] | None) -> _Plan:
    """The snapshots and pairs of ``scheme`` to compute: all (``changed`` None), else those
    touching a changed date, not stored yet (or without scored counts), or whose scored state
    differs from the stored."""
    pairs = snapshot_pairs(dates)
    if changed is None:
        return _Plan(list(dates), pairs)
    stored = dict(store.raw.execute(
        "SELECT snapshot_date, bool_or(scored_customers IS NOT NULL) FROM summary_segments "
        "WHERE scheme = ? GROUP BY 1", [scheme]).fetchall())
    # pairs stored by a segflow before scored counts (clv without them) count as missing
    stored_pairs = {tuple(r[:2]) for r in store.raw.execute(
        "SELECT from_date, to_date, bool_or(clv IS NOT NULL AND scored_customers IS NULL) "
        "FROM summary_transitions WHERE scheme = ? GROUP BY ALL", [scheme]).fetchall() if not r[2]}
    dirty = set(changed)
    dirty |= {d for d in dates if d not in stored or bool(stored[d]) != (d in scored)}
    return _Plan(
        [d for d in dates if d in dirty],
        [p for p in pairs if p[0] in dirty or p[1] in dirty or p not in stored_pairs],
    )


def _delete_stale(con: object, table: str, column: str, schemes: Sequence[str],
                  keep: dict[str, tuple[Sequence[dt.date], Sequence[dt.date]]]) -> None:
    """Delete the rows of ``table`` of other schemes, and per scheme those of dates that no
    longer exist or are computed again."""
    con.execute(f"DELETE FROM {table} WHERE scheme NOT IN (SELECT unnest(?::VARCHAR[]))",  # type: ignore[attr-defined]
                [list(schemes)])
    for scheme, (current, redo) in keep.items():
        con.execute(  # type: ignore[attr-defined]
            f"DELETE FROM {table} WHERE scheme = ? AND ({column} IN (SELECT unnest(?::DATE[])) "
            f"OR {column} NOT IN (SELECT unnest(?::DATE[])))",
            [scheme, list(redo), list(current)])


def _delete_stale_pairs(con: object, schemes: Sequence[str], plan: dict[str, _Plan],
                        dates_of: dict[str, list[dt.date]]) -> None:
    """Delete the transition rows of other schemes, of pairs no longer summarised, and of
    pairs computed again."""
    con.execute("DELETE FROM summary_transitions WHERE scheme NOT IN (SELECT unnest(?::VARCHAR[]))",  # type: ignore[attr-defined]
                [list(schemes)])
    for scheme in schemes:
        current = set(snapshot_pairs(dates_of[scheme]))
        redo = set(plan[scheme].pairs)
        stored = con.execute(  # type: ignore[attr-defined]
            "SELECT DISTINCT from_date, to_date FROM summary_transitions WHERE scheme = ?",
            [scheme]).fetchall()
        for frm, to in (tuple(p) for p in stored if tuple(p) in redo or tuple(p) not in current):
            con.execute(  # type: ignore[attr-defined]
                "DELETE FROM summary_transitions WHERE scheme = ? AND from_date = ? AND to_date = ?",
                [scheme, frm, to])


def audit_is_current(store: Store) -> bool:
    """Whether ``summary_audit`` holds an audit of the store's current data, so that a run
    need not audit the same data again: every load empties the table in its transaction,
    and an audit stored before the last load finished (a store of an older segflow) is not
    current either."""
    names = store.tables()
    if "summary_audit" not in names or "loads" not in names:
        return False
    # Ibis expressions: a DuckDB store or a Spark warehouse's run (segflow.warehouse)
    audited = store.table("summary_audit").created_at.min().to_pyarrow().as_py()
    loads = store.table("loads")
    loaded = ibis.greatest(loads.finished_at.fill_null(loads.started_at),
                           loads.started_at).max().to_pyarrow().as_py()
    return audited is not None and (loaded is None or audited >= loaded)


def store_audit(store: Store, *, force: bool = False) -> bool:
    """Audit the store (:func:`segflow.quality.audit`) and replace ``summary_audit`` with it,
    unless the stored audit is current (:func:`audit_is_current`; ``force``: always).

    Called at the end of ``segflow ingest``, which is what changes the audited data, so that
    ``segflow run`` and the report read the stored audit instead of scanning every canonical
    table again. Returns whether an audit was computed."""
    if not force and audit_is_current(store):
        return False
    frame = _audit_frame(store)
    frame["run_id"] = store.raw.execute(
        "SELECT any_value(run_id) FROM summary_audit").fetchone()[0]
    with store.transaction() as con:
        con.execute("DELETE FROM summary_audit")
        store.append("summary_audit", frame, con=con)
    return True


def _audit_frame(store: Store) -> pd.DataFrame:
    from segflow.quality import audit

    report = audit(store)
    frame = report.to_pandas()
    frame.insert(0, "as_of", report.as_of)
    frame["data_end"] = report.data_end
    frame["score"] = report.score
    frame["created_at"] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return frame
