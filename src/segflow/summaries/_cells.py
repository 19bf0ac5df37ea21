"""Segment and transition aggregates of every scheme at once, on integer keys (Ibis).

The customer-level work of :func:`segflow.summaries.write_aggregates` in one pass for all
schemes, instead of one set of joins per scheme on string customer ids:

1. *Keys.* Every customer id of the assignments' catalogue (``segment_spells`` on the store:
   a few rows per customer) gets an integer key ``k``; every (scheme, segment, rank) an
   integer code ``g``. Customers never assigned are left out (they belong to no cell).
2. *States.* One row per (customer key, snapshot) with every scheme's segment code packed
   into int64 words (:mod:`segflow.summaries._packing`: a bit field per scheme), the net
   revenue before the snapshot (all time and 365 days) and the CLV scores at it
   (:func:`states`): the assignments pivoted once (one sum per word), outer-joined with
   revenue and scores once, shared by all schemes.
3. *Segments.* The states grouped once by (snapshot, words) into the combinations of
   segments (few: about 1,400 per snapshot across six schemes at 1M customers), then per
   scheme that small table by the scheme's own code.
4. *Transitions.* Every pair of snapshots of any scheme: the states at ``from`` full-outer-
   joined with the states at ``to`` on (pair, key), once for all schemes, grouped once by
   (pair, from words, to words), then per scheme by (pair, from code, to code).

Sums are exact decimals at both levels of grouping (a sum of exact sums), so the cells are
those of one grouping per scheme to the bit. Only the small grouped tables come back to
Python, where codes become segment names and ranks (a segment whose customers carry several
ranks is one row with the smallest, as in a group-by on the segment name). Definitions and
units: :mod:`segflow.summaries`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import ibis
import pandas as pd
import pyarrow as pa
from ibis import _

from segflow.features import money_sum, score_sum
from segflow.features._window import EXACT_SCORE, exact_decimal, money
from segflow.summaries._packing import Packing

NEW, GONE = "(new)", "(gone)"

#: Decimal places of the money sums (:func:`segflow.features.money_sum`, a millionth of the
#: currency unit): a difference or total of them taken in pandas is rounded to as many, so
#: it is the same double as the engine's exact sum (the full and the incremental path agree).
#: The model outputs' sums (:func:`segflow.features.score_sum`, twelve places) are not
#: rounded again: a rounding to a millionth would cost a small segment's P(alive) precision.
MICRO = 6
#: The money columns of the segment and transition rows.
MONEY = ["revenue", "revenue_12m", "revenue_all_time"]


def _round_money(frame: pd.DataFrame) -> None:
    """The money columns of ``frame`` rounded to :data:`MICRO` places (in place)."""
    cols = [c for c in MONEY if c in frame.columns]
    frame[cols] = frame[cols].round(MICRO)


def _dates(days: Sequence[dt.date]) -> list[ibis.Value]:
    return [ibis.literal(d, "date") for d in sorted(set(days))]


def codes(catalogue: ibis.Table, schemes: Sequence[str]) -> ibis.Table:
    """One row per (scheme of ``schemes``, segment, rank) of ``catalogue`` (columns
    ``scheme, segment, segment_rank``): ``si`` (the scheme's position in ``schemes``),
    ``scheme``, ``segment``, ``segment_rank`` and the code ``g`` (int64, unique overall)."""
    names = ibis.memtable(pa.table({"c_scheme": pa.array(list(schemes), pa.string()),
                                    "si": pa.array(range(len(schemes)), pa.int64())}))
    c = catalogue.select("scheme", "segment", "segment_rank").distinct()
    c = c.join(names, c.scheme == names.c_scheme).select("si", "scheme", "segment", "segment_rank")
    # numbered in a fixed order: a code means the same segment however often it is computed
    # (Spark may compute a cached table again, and rows reach a window in any order there)
    return c.mutate(g=ibis.row_number().over(order_by=["si", "segment", "segment_rank"]))


def keys(catalogue: ibis.Table, *, ordered: bool = False) -> ibis.Table:
    """``customer_id`` -> ``k`` (int64) for every customer id of ``catalogue``; ``ordered``:
    numbered in id order, the same keys every time the table is computed (needed on Spark,
    which may compute a cached table again and hands rows to a window in any order; on
    DuckDB a cached table is computed once, and the sort is saved)."""
    ids = catalogue.select("customer_id").distinct()
    return ids.mutate(k=ibis.row_number().over(order_by="customer_id") if ordered else ibis.row_number())


def coded_rows(assignments: ibis.Table, keyed: ibis.Table, coded: ibis.Table,
               days: Sequence[dt.date]) -> ibis.Table:
    """Per-snapshot assignments (``scheme, snapshot_date, customer_id, segment,
    segment_rank``) at ``days`` as ``snapshot_date, k, si, g``."""
    a = assignments.filter(assignments.snapshot_date.isin(_dates(days)))
    a = a.join(keyed, a.customer_id == keyed.customer_id).select(
        "scheme", "snapshot_date", "segment", "segment_rank", "k").view()
    return a.join(coded, (a.scheme == coded.scheme) & (a.segment == coded.segment)
                  & a.segment_rank.identical_to(coded.segment_rank)).select("snapshot_date", "k", "si", "g")


def coded_spells(spells: ibis.Table, snapshots: ibis.Table, keyed: ibis.Table, coded: ibis.Table,
                 days: Sequence[dt.date]) -> ibis.Table:
    """The same rows as :func:`coded_rows`, from the change rows (``segment_spells``: a spell
    holds at every computed snapshot of ``segment_snapshots`` from ``valid_from`` up to
    ``valid_to``, as the view ``segment_assignments`` says), keyed and coded before they are
    expanded to snapshots (a few rows per customer instead of one per snapshot)."""
    lo, hi = min(days), max(days)
    # only spells covering some day of ``days`` are keyed and coded (one new month: the open ones)
    spells = spells.filter(spells.valid_from <= ibis.literal(hi, "date"),
                           spells.valid_to.isnull() | (spells.valid_to > ibis.literal(lo, "date")))
    sp = spell_codes(spells, keyed, coded)
    snaps = snapshots.filter(snapshots.snapshot_date.isin(_dates(days))).select(
        s_scheme="scheme", snapshot_date="snapshot_date")
    j = sp.join(snaps, (snaps.s_scheme == sp.scheme) & (snaps.snapshot_date >= sp.valid_from)
                & (snaps.snapshot_date < sp.valid_to))
    return j.select("snapshot_date", "k", "si", "g")


def spell_codes(spells: ibis.Table, keyed: ibis.Table, coded: ibis.Table) -> ibis.Table:
    """The change rows keyed and coded: ``scheme, valid_from, valid_to`` (an open spell ends
    9999-12-31), ``k, si, g``."""
    sp = spells.join(keyed, spells.customer_id == keyed.customer_id).select(
        "scheme", "segment", "segment_rank", "valid_from", "k",
        valid_to=spells.valid_to.fill_null(ibis.date(9999, 12, 31))).view()
    return sp.join(coded, (sp.scheme == coded.scheme) & (sp.segment == coded.segment)
                   & sp.segment_rank.identical_to(coded.segment_rank)).select(
        "scheme", "valid_from", "valid_to", "k", "si", "g").view()


def bucket_amounts(transactions: ibis.Table, keyed: ibis.Table, days: Sequence[dt.date]) -> ibis.Table:
    """``k, be, amount``: per customer key, the net amount (float64, currency units) of the
    lines with ``ts`` before the last of ``days``, by ``be``, the first day of ``days`` after
    ``ts`` (so the revenue before a day ``F`` of ``days`` is the sum over ``be <= F``).
    Anonymous lines and customers outside ``keyed`` are left out."""
    d = sorted(set(days))
    t = transactions.filter(transactions.customer_id.notnull(),
                            transactions.ts < ibis.timestamp(dt.datetime.combine(d[-1], dt.time())))
    t = t.join(keyed, t.customer_id == keyed.customer_id)
    be = ibis.cases(*[(t.ts < ibis.timestamp(dt.datetime.combine(x, dt.time())), ibis.literal(x, "date"))
                      for x in d])
    return t.group_by(k=t.k, be=be).agg(amount=money_sum(t.amount))


def states(a: ibis.Table, revenue: ibis.Table, scores: ibis.Table, keyed: ibis.Table,
           packing: Packing, days: Sequence[dt.date]) -> ibis.Table:
    """One row per (customer key, snapshot of ``days``) with an assignment, revenue or
    scores there: ``k, snapshot_date``, the words ``p0 ..`` of ``packing`` (every scheme's
    segment code; :meth:`Packing.code` reads one, :meth:`Packing.decoded` all), ``r_all,
    r_12`` (revenue before the snapshot: all time, 365 days), ``p_alive, expected_purchases,
    clv`` (null when none).

    ``a``: :func:`coded_rows` or :func:`coded_spells`; ``revenue``:
    :func:`segflow.summaries.revenue_at_snapshots`; ``scores``: ``s_date, s_cid, p_alive,
    expected_purchases, clv``; ``keyed``: :func:`keys` (cached by the caller); ``packing``:
    :meth:`Packing.of` the executed :func:`codes`."""
    lit = _dates(days)
    words = packing.words
    wide = packing.pivot(a, ["k", "snapshot_date"]).view()
    rv = revenue.filter(revenue.snapshot_date.isin(lit))
    kr = keyed.view()
    rv = rv.join(kr, rv.customer_id == kr.customer_id).select(
        r_k="k", r_date="snapshot_date", r_all="revenue_all_time", r_12="revenue_12m")
    j = wide.outer_join(rv, (wide.k == rv.r_k) & (wide.snapshot_date == rv.r_date))
    j = j.select(k=ibis.coalesce(j.k, j.r_k), snapshot_date=ibis.coalesce(j.snapshot_date, j.r_date),
                 **{w: j[w] for w in words}, r_all=j.r_all, r_12=j.r_12).view()
    sc = scores.filter(scores.s_date.isin(lit))
    ks = keyed.view()
    sc = sc.join(ks, sc.s_cid == ks.customer_id).select(
        "s_date", "p_alive", "expected_purchases", "clv", s_k="k")
    o = j.outer_join(sc, (j.k == sc.s_k) & (j.snapshot_date == sc.s_date))
    return o.select(
        k=ibis.coalesce(o.k, o.s_k), snapshot_date=ibis.coalesce(o.snapshot_date, o.s_date),
        **{w: o[w] for w in words}, r_all=o.r_all, r_12=o.r_12,
        p_alive=o.p_alive, expected_purchases=o.expected_purchases, clv=o.clv,
    )


def _named(frame: pd.DataFrame, code_table: pd.DataFrame, col: str, seg: str, rank: str,
           missing: str) -> pd.DataFrame:
    """Codes of ``col`` as segment names and ranks (``missing`` for a null code)."""
    lookup = code_table.set_index("g")
    frame[seg] = frame[col].map(lookup["segment"]).fillna(missing)
    frame[rank] = frame[col].map(lookup["segment_rank"])
    return frame.drop(columns=col)


def segment_rows(st: ibis.Table, code_table: pd.DataFrame, schemes: Sequence[str],
                 dates: Mapping[str, Sequence[dt.date]]) -> pd.DataFrame:
    """Per scheme, snapshot of ``dates[scheme]`` and segment: the columns of
    ``summary_segments`` before shares (``scheme, snapshot_date, segment, segment_rank,
    customers, revenue_12m, revenue_all_time, scored_customers, mean_p_alive,
    expected_purchases, clv``) from the :func:`states` table ``st``."""
    cells = segment_cells(st, Packing.of(code_table, schemes), schemes, dates)
    return finish_segments(cells, code_table, schemes)


#: The key and the summed columns of :func:`segment_cells` and :func:`transition_cells`.
SEGMENT_KEY = ["si", "snapshot_date", "g"]
TRANSITION_KEY = ["si", "pair", "f", "t"]


def add_cells(frames: Sequence[pd.DataFrame], key: list[str]) -> pd.DataFrame:
    """The cells of several chunks of customers added up (every column but ``key`` is a
    count or a sum over customers); money sums rounded to :data:`MICRO` places again, score
    sums to the twelve of :func:`segflow.features.score_sum`, so that they equal the sums of
    one chunk (up to a double's precision for score sums beyond about 1,000)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(key, kind="stable").groupby(key, as_index=False, dropna=False, sort=False).sum(
        min_count=1)
    _round_money(out)
    scores = [c for c in ("p_alive_sum", "expected_purchases", "clv") if c in out.columns]
    out[scores] = out[scores].round(12)  # the places of score_sum: the one-chunk double
    return out


def _total(column: ibis.Value, kind: str) -> ibis.Value:
    """The second-level sum of a combination table's column: a count or exact decimal sum
    (:func:`segflow.features.money_sum`, :func:`segflow.features.score_sum`) summed again,
    as int64 or float64."""
    return column.sum().cast("int64" if kind == "count" else "float64")


def segment_cells(st: ibis.Table, packing: Packing, schemes: Sequence[str],
                  dates: Mapping[str, Sequence[dt.date]]) -> pd.DataFrame:
    """The grouped segment cells of the :func:`states` table ``st`` (codes, not names):
    :data:`SEGMENT_KEY` and ``customers, revenue_12m, revenue_all_time, scored_customers,
    p_alive_sum, expected_purchases, clv``; sums over the customers of ``st``, so that
    chunks of customers add up (:func:`add_cells`).

    The states are grouped once by (snapshot, words) into the combinations of segments
    (exact decimal sums), which each scheme groups again by its own code."""
    wanted = [i for i, s in enumerate(schemes) if dates.get(s)]
    if not wanted:
        return pd.DataFrame()
    every = {d for i in wanted for d in dates[schemes[i]]}
    part = st.filter(st.snapshot_date.isin(_dates(every)))
    combos = part.group_by("snapshot_date", *packing.words).agg(
        customers=_.count(), revenue_12m=money(part.r_12).sum(), revenue_all_time=money(part.r_all).sum(),
        scored_customers=part.p_alive.count(), p_alive_sum=exact_decimal(part.p_alive, EXACT_SCORE).sum(),
        expected_purchases=exact_decimal(part.expected_purchases, EXACT_SCORE).sum(),
        clv=exact_decimal(part.clv, EXACT_SCORE).sum()).cache()
    try:
        parts = []
        for i in wanted:
            c = combos.mutate(g=packing.code(combos, i))
            c = c.filter(c.g.notnull(), c.snapshot_date.isin(_dates(dates[schemes[i]])))
            parts.append(c.group_by(si=ibis.literal(i, "int64"), snapshot_date=c.snapshot_date, g=c.g).agg(
                customers=_total(c.customers, "count"), revenue_12m=_total(c.revenue_12m, "sum"),
                revenue_all_time=_total(c.revenue_all_time, "sum"),
                scored_customers=_total(c.scored_customers, "count"),
                p_alive_sum=_total(c.p_alive_sum, "sum"),
                expected_purchases=_total(c.expected_purchases, "sum"), clv=_total(c.clv, "sum")))
        return ibis.union(*parts).execute()
    finally:
        combos.release()


def finish_segments(out: pd.DataFrame, code_table: pd.DataFrame, schemes: Sequence[str]) -> pd.DataFrame:
    """:func:`segment_rows` from its cells (:func:`segment_cells`, added up)."""
    if out.empty:
        return pd.DataFrame()
    out = _named(out, code_table, "g", "segment", "segment_rank", "")
    out["scheme"] = [schemes[i] for i in out["si"]]
    by = ["scheme", "snapshot_date", "segment"]
    sums = ["revenue_12m", "revenue_all_time", "expected_purchases", "clv"]
    if out.duplicated(by).any():  # a segment with customers of several ranks: one row
        out = out.sort_values([*by, "segment_rank"]).groupby(by, as_index=False).agg(
            segment_rank=("segment_rank", "min"), customers=("customers", "sum"),
            scored_customers=("scored_customers", "sum"), p_alive_sum=("p_alive_sum", "sum"),
            **{c: (c, "sum") for c in sums})
        _round_money(out)
    scored = out["scored_customers"]
    out["mean_p_alive"] = (out["p_alive_sum"] / scored).where(scored > 0)
    out[sums] = out[sums].fillna(0.0)
    return out.drop(columns=["si", "p_alive_sum"], errors="ignore").sort_values(by, ignore_index=True)


def transition_rows(st: ibis.Table, code_table: pd.DataFrame, schemes: Sequence[str],
                    pairs: Mapping[str, Sequence[tuple[dt.date, dt.date]]]) -> pd.DataFrame:
    """Per scheme, pair of ``pairs[scheme]`` and cell: ``scheme, from_date, to_date,
    from_segment, to_segment, from_rank, to_rank, customers, revenue, revenue_12m, clv,
    scored_customers`` (those with a CLV score at ``to``)
    (definitions: :mod:`segflow.summaries`) from the :func:`states` table
    ``st`` (which must cover every date of the pairs)."""
    cells = transition_cells(st, Packing.of(code_table, schemes), schemes, pairs)
    return finish_transitions(cells, code_table, schemes, pairs)


def transition_cells(st: ibis.Table, packing: Packing, schemes: Sequence[str],
                     pairs: Mapping[str, Sequence[tuple[dt.date, dt.date]]]) -> pd.DataFrame:
    """The grouped transition cells of the :func:`states` table ``st`` (codes, not names;
    ``pair`` indexes the sorted pairs of every scheme): :data:`TRANSITION_KEY` and
    ``customers, revenue, revenue_12m, clv, scored_customers``; sums over the customers of
    ``st``, so that chunks of customers add up (:func:`add_cells`)."""
    every = sorted({p for s in schemes for p in pairs.get(s, ())})
    if not every:
        return pd.DataFrame()
    # the pairs in batches: each batch's joined states are materialised; all pairs at once
    # were about 210 million joined rows at 10M customers and 21 pairs, and that run's
    # process grew to 23.7 GB (DuckDB's memory limit 9 GB) and was killed
    dates = {d for pair in every for d in pair}
    per_date = int(st.filter(st.snapshot_date.isin(_dates(dates))).count().execute()) / len(dates)
    size = max(1, int(PAIR_BATCH_ROWS // max(per_date, 1.0)))
    frames = [_pair_cells(st, packing, schemes, pairs, every, list(range(lo, min(lo + size, len(every)))))
              for lo in range(0, len(every), size)]
    return pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)


def finish_transitions(out: pd.DataFrame, code_table: pd.DataFrame, schemes: Sequence[str],
                       pairs: Mapping[str, Sequence[tuple[dt.date, dt.date]]]) -> pd.DataFrame:
    """:func:`transition_rows` from its cells (:func:`transition_cells`, added up)."""
    if out.empty:
        return pd.DataFrame()
    every = sorted({p for s in schemes for p in pairs.get(s, ())})
    out = _named(out, code_table, "f", "from_segment", "from_rank", NEW)
    out = _named(out, code_table, "t", "to_segment", "to_rank", GONE)
    out["scheme"] = [schemes[i] for i in out["si"]]
    out["from_date"] = [every[i][0] for i in out["pair"]]
    out["to_date"] = [every[i][1] for i in out["pair"]]
    return _one_row_per_cell(out)


#: State rows per side joined at once by :func:`transition_rows` (the pairs are taken in
#: batches of about this many rows: 2 pairs a batch at 10M customers, all at 400,000).
PAIR_BATCH_ROWS = 20_000_000


def _pair_cells(st: ibis.Table, packing: Packing, schemes: Sequence[str],
                pairs: Mapping[str, Sequence[tuple[dt.date, dt.date]]],
                every: list[tuple[dt.date, dt.date]], batch: list[int]) -> pd.DataFrame:
    """The grouped cells (``si, pair, f, t, customers, revenue, revenue_12m, clv,
    scored_customers``; codes, not names) of the pairs ``every[i]`` for ``i`` in ``batch``:
    the states at each pair's from and to snapshots full-outer-joined on the customer,
    grouped once by (pair, from words, to words), then by each scheme's own codes."""
    p = ibis.memtable(pa.table({
        "pair": pa.array(batch, pa.int64()),
        "p_from": pa.array([every[i][0] for i in batch], pa.date32()),
        "p_to": pa.array([every[i][1] for i in batch], pa.date32()),
    }))
    words = packing.words
    left = st.join(p, st.snapshot_date == p.p_from).select(
        l_pair="pair", l_k="k", f_all="r_all", **{f"f{w[1:]}": w for w in words})
    pr, sv = p.view(), st.view()
    right = sv.join(pr, sv.snapshot_date == pr.p_to).select(
        r_pair="pair", r_k="k", t_all="r_all", t_12="r_12", t_clv="clv", **{f"t{w[1:]}": w for w in words})
    j = left.outer_join(right, (left.l_pair == right.r_pair) & (left.l_k == right.r_k))
    sides = [f"{side}{w[1:]}" for side in "ft" for w in words]
    j = j.select(pair=ibis.coalesce(j.l_pair, j.r_pair),
                 moved=j.t_all.fill_null(0.0) - j.f_all.fill_null(0.0), t_12=j.t_12, t_clv=j.t_clv,
                 **{c: j[c] for c in sides})
    combos = j.group_by("pair", *sides).agg(
        customers=_.count(), revenue=money(j.moved).sum(), revenue_12m=money(j.t_12).sum(),
        clv=exact_decimal(j.t_clv, EXACT_SCORE).sum(), scored_customers=j.t_clv.count()).cache()
    try:
        parts = []
        for i, scheme in enumerate(schemes):
            wanted = {every.index(x) for x in pairs.get(scheme, ())} & set(batch)
            if not wanted:
                continue
            c = combos.mutate(f=packing.code(combos, i, "f"), t=packing.code(combos, i, "t"))
            keep = [c.f.notnull() | c.t.notnull()]
            if len(wanted) < len(batch):
                keep.append(c.pair.isin(sorted(wanted)))
            c = c.filter(*keep)
            parts.append(c.group_by(si=ibis.literal(i, "int64"), pair=c.pair, f=c.f, t=c.t).agg(
                customers=_total(c.customers, "count"), revenue=_total(c.revenue, "sum"),
                revenue_12m=_total(c.revenue_12m, "sum"), clv=_total(c.clv, "sum"),
                scored_customers=_total(c.scored_customers, "count")))
        return ibis.union(*parts).execute() if parts else pd.DataFrame()
    finally:
        combos.release()


def _one_row_per_cell(out: pd.DataFrame) -> pd.DataFrame:
    """Transition rows with one row per cell (a segment with customers of several ranks is
    one cell with the smallest), null sums as 0, sorted; helper columns dropped."""
    by = ["scheme", "from_date", "to_date", "from_segment", "to_segment"]
    sums = ["revenue", "revenue_12m", "clv"]
    if out.duplicated(by).any():  # a segment with customers of several ranks: one cell
        out = out.sort_values([*by, "from_rank", "to_rank"]).groupby(by, as_index=False).agg(
            from_rank=("from_rank", "min"), to_rank=("to_rank", "min"),
            customers=("customers", "sum"), scored_customers=("scored_customers", "sum"),
            **{c: (c, "sum") for c in sums})
    out[sums] = out[sums].fillna(0.0)
    _round_money(out)
    out["scored_customers"] = out["scored_customers"].fillna(0).astype("int64")
    cols = ["scheme", "from_date", "to_date", "from_segment", "to_segment", "from_rank", "to_rank",
            "customers", *sums, "scored_customers"]
    return out[cols].sort_values(by, ignore_index=True)


def ending_transitions(spells: ibis.Table, latest: ibis.Table, amounts: ibis.Table,
                       code_table: pd.DataFrame, schemes: Sequence[str],
                       pairs: Mapping[str, Sequence[tuple[dt.date, dt.date]]]) -> pd.DataFrame:
    """:func:`transition_rows` of pairs that all end at the latest snapshot ``L``, from the
    change rows instead of every snapshot's states: the same rows (up to the order of double
    sums) with work proportional to spells, not customers x snapshots.

    Each customer's "to" side is one row of ``latest`` (:func:`states` at ``L``: ``k``, the
    words of every scheme's code, ``r_all, r_12, clv``); the "from" side at a snapshot ``F < L`` is the spell covering
    ``F``. So spells joined with ``latest`` and grouped by (scheme, from code, to code,
    valid_from, valid_to) give the cells of every pair at once once expanded to the ``F`` in
    each group's range (a small table). The revenue between ``F`` and ``L`` is the to-side
    revenue minus the revenue before ``F``, which is the sum of ``amounts`` (``k, be, amount``:
    a customer's net amount per bucket of transactions before ``be``, the first snapshot after
    them) with ``be <= F``: per spell, an amount counts for every ``F`` from ``max(valid_from,
    be)`` on. Customers with no spell at ``F`` and a segment at ``L`` (``(new)``) are the
    customers of the to segment minus those with a spell at ``F``.

    ``spells``: ``si, k, g, valid_from, valid_to`` (open end: 9999-12-31), every scheme's
    spells keyed and coded (:func:`coded_spells` before expansion).
    """
    n = len(schemes)
    rows = [(i, f) for i, s in enumerate(schemes) for f, _t in pairs.get(s, ())]
    if not rows:
        return pd.DataFrame()
    p = ibis.memtable(pa.table({"p_si": pa.array([r[0] for r in rows], pa.int64()),
                                "p_from": pa.array([r[1] for r in rows], pa.date32())}))
    last = max(t for x in schemes for _f, t in pairs.get(x, ()))
    lt = Packing.of(code_table, schemes).decoded(latest).view()
    early = spells.filter(spells.valid_from < ibis.literal(last, "date"))  # a from side: F < L
    s = early.left_join(lt, early.k == lt.k)
    s = s.select(si=s.si, k=s.k, f=s.g, valid_from=s.valid_from, valid_to=s.valid_to,
                 t=ibis.cases(*[(s.si == i, s[f"g{i}"]) for i in range(n)])).cache()
    try:
        # the to side's money as exact decimals once per customer, not once per spell
        lx = lt.select(x_k=lt.k, t_all=money(lt.r_all), t_12=money(lt.r_12),
                       t_clv=exact_decimal(lt.clv, EXACT_SCORE))
        sx = s.left_join(lx, s.k == lx.x_k)
        cells = sx.group_by("si", "f", "t", "valid_from", "valid_to").agg(
            customers=_.count(), t_all=money_sum(sx.t_all), t_12=money_sum(sx.t_12),
            t_clv=score_sum(sx.t_clv), scored=_.t_clv.count())
        # a spell takes the customer's buckets ending inside it one by one, and those before
        # it as one sum (the running sum of the last bucket ending at or before its start):
        # rows = spells + buckets x schemes, not spells x buckets; money exact (decimals)
        a = amounts.mutate(amount=money(amounts.amount))
        a = a.mutate(
            cum=a.amount.sum().over(ibis.cumulative_window(group_by="k", order_by="be")),
            nxt=a.be.lead().over(group_by="k", order_by="be").fill_null(ibis.date(9999, 12, 31)))
        m = s.join(a, (s.k == a.k) & (a.be < s.valid_to) & (a.nxt > s.valid_from))
        value = ibis.ifelse(m.be <= m.valid_from, m.cum, m.amount)
        before = m.group_by(si=m.si, f=m.f, t=m.t, lo=ibis.greatest(m.valid_from, m.be),
                            valid_to=m.valid_to).agg(r_before=money_sum(value))
        cx = cells.join(p, (cells.si == p.p_si) & (cells.valid_from <= p.p_from)
                        & (p.p_from < cells.valid_to))
        cx = cx.group_by("si", "p_from", "f", "t").agg(
            customers=cx.customers.sum(), t_all=money_sum(cx.t_all), t_12=money_sum(cx.t_12),
            t_clv=score_sum(cx.t_clv), scored=cx.scored.sum()).execute()
        pv = p.view()
        bx = before.join(pv, (before.si == pv.p_si) & (before.lo <= pv.p_from)
                         & (pv.p_from < before.valid_to))
        bx = bx.group_by("si", "p_from", "f", "t").agg(r_before=money_sum(bx.r_before)).execute()
    finally:
        s.release()
    # the to segments' totals and the revenue of their customers before each F (the amounts
    # grouped by every scheme's to segment at once: a small table)
    la = lt.join(amounts, lt.k == amounts.k)
    la = la.group_by(*[f"g{i}" for i in range(n)], "be").agg(amount=money_sum(la.amount)).cache()
    totals, before_to = [], []
    for i in range(n):
        g = lt[f"g{i}"]
        held = lt.filter(g.notnull())
        totals.append(held.group_by(si=ibis.literal(i, "int64"), t=held[f"g{i}"]).agg(
            customers=_.count(), t_all=money_sum(held.r_all), t_12=money_sum(held.r_12),
            t_clv=score_sum(held.clv), scored=_.clv.count()))
        part = la.filter(la[f"g{i}"].notnull())
        part = part.group_by(si=ibis.literal(i, "int64"), t=part[f"g{i}"], be=part.be).agg(
            amount=money_sum(part.amount))
        j = part.join(pv, (part.si == pv.p_si) & (part.be <= pv.p_from))
        before_to.append(j.group_by("si", "p_from", "t").agg(r_before=money_sum(j.amount)))
    try:
        totals_df = ibis.union(*totals).execute()
        before_df = ibis.union(*before_to).execute()
    finally:
        la.release()
    return _ending_cells(cx, bx, totals_df, before_df, rows, code_table, schemes, last)


def _ending_cells(cx: pd.DataFrame, bx: pd.DataFrame, totals: pd.DataFrame, before_to: pd.DataFrame,
                  rows: list[tuple[int, dt.date]], code_table: pd.DataFrame,
                  schemes: Sequence[str], latest: dt.date) -> pd.DataFrame:
    """The cells of :func:`ending_transitions` from its small grouped tables (pandas)."""
    key = ["si", "p_from", "f", "t"]
    for frame in (cx, bx, before_to):
        frame["p_from"] = pd.to_datetime(frame["p_from"]).dt.date
    spelled = cx.merge(bx, on=key, how="outer")
    sums = ["customers", "t_all", "t_12", "t_clv", "scored", "r_before"]
    spelled[sums] = spelled[sums].fillna(0.0)
    # (new): every customer of the to segment minus those with a spell at F
    grid = pd.DataFrame(rows, columns=["si", "p_from"]).merge(totals, on="si")
    grid = grid.merge(before_to, on=["si", "p_from", "t"], how="left")
    covered = spelled[spelled["t"].notnull()].groupby(["si", "p_from", "t"], as_index=False)[sums].sum()
    new = grid.merge(covered, on=["si", "p_from", "t"], how="left", suffixes=("", "_c"))
    new[sums] = new[sums].fillna(0.0)
    for c in sums:
        new[c] = new[c] - new[f"{c}_c"].fillna(0.0)
    new[["t_all", "t_12", "r_before"]] = new[["t_all", "t_12", "r_before"]].round(MICRO)
    new = new[new["customers"] > 0].assign(f=pd.NA)[key + sums]
    out = pd.concat([spelled[key + sums], new], ignore_index=True)
    out["customers"] = out["customers"].astype("int64")
    out["revenue"] = (out["t_all"] - out["r_before"]).round(MICRO)
    out = out.rename(columns={"t_12": "revenue_12m", "t_clv": "clv", "scored": "scored_customers"})
    out = _named(out, code_table, "f", "from_segment", "from_rank", NEW)
    out = _named(out, code_table, "t", "to_segment", "to_rank", GONE)
    out["scheme"] = [schemes[i] for i in out["si"]]
    out["from_date"] = out["p_from"]
    out["to_date"] = latest
    return _one_row_per_cell(out)
