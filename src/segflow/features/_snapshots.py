"""``snapshot_features``: the features of many snapshots as one long table, in one pass.

The readable definition is :func:`segflow.features.customer_features` at one snapshot; this
module computes the same table for every snapshot of a grid at once (see
``docs/concepts.md``, "Period aggregates", and :mod:`segflow.features._periods`):

1. every transaction line, web event and customer row is tagged with its period ``k`` (the
   first snapshot that sees it) by an equi-join on its calendar day;
2. lines, orders and sessions are aggregated once per (customer, period) into exact
   *deltas* (integers; money as decimals); an amount inside a 12-month, 90-day or
   ``window_days`` window enters at its period and leaves (a negative delta) at the first
   snapshot after the window;
3. running sums (minima, maxima) over a customer's periods give every snapshot's values on a
   grid of one row per (snapshot, customer known at it).

Customers are numbered (integer keys in id order, materialised once) and processed in chunks
of :data:`CHUNK_CUSTOMERS`: each chunk's period-tagged lines and its result are materialised
(Ibis ``cache``) before the next chunk starts, so the working set of DuckDB (or Spark) is
that of one chunk, and no sub-plan is computed twice within a chunk. With the feature state
(:func:`snapshot_features_and_state`), each chunk also sums its deltas up to the last snapshot
from the same materialised tables (:func:`segflow.features._state.period_deltas`): its order,
line and season deltas per (customer, period) are then materialised too, read by the grid's
running sums and summed over all periods for the state, not computed twice.

One pass: groups ``rfm``, ``seasonality``, ``web``, ``breadth``, ``attribute`` and the order-value part of
``pattern`` (``avg_order_value``, ``basket_size``, ``promo_share``, ``return_rate``,
``spend_trend``). Still per snapshot (the functions of the readable definition, one query
part per snapshot, joined on (snapshot, customer)): ``ipt_mean_days``, ``ipt_cv``, the top
category / main channel columns and their counts (``pattern``), ``campaign`` and
``survey``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

import ibis

from segflow._dates import as_date
from segflow.errors import InputError
from segflow.features import _onepass_purchases as purchases
from segflow.features import _onepass_web as web
from segflow.features._attributes import ATTRIBUTE_COLUMNS, known_from
from segflow.features._behaviour import campaign_features
from segflow.features._core import (
    _ZERO_WHEN_ABSENT,
    REQUIRED_TABLES,
    KnownSchema,
    _check_groups,
    customer_features,
    text_columns,
)
from segflow.features._derive import one_pass_features
from segflow.features._periods import Periods, running_onto, union_deltas
from segflow.features._purchases import (
    interpurchase_features,
    order_table,
    prepare_lines,
    top_share,
)
from segflow.features._state import MEASURES, period_deltas
from segflow.features._survey import survey_features, survey_registry
from segflow.features._window import Frame


def snapshot_features(
    tables: Mapping[str, ibis.Table],
    dates: Sequence[dt.date],
    *,
    window_days: int | None = None,
    groups: Collection[str] | None = None,
    columns: Collection[str] | None = None,
    chunk_customers: int | None = None,
    known: KnownSchema | None = None,
) -> ibis.Table:
    """Features at every date of ``dates``, one row per (snapshot, customer known at it).

    Parameters
    ----------
    tables, window_days, groups
        As for :func:`segflow.features.customer_features`.
    dates : sequence of date
        The snapshot dates (at least one; duplicates are ignored).
    columns : collection of str, optional
        Only these feature columns (``customer_id`` always); the per-snapshot parts none of
        whose columns are asked for are not computed. Default: every column of ``groups``.
    chunk_customers : int, optional
        Customers per chunk (default :data:`CHUNK_CUSTOMERS`): the customers are split by
        their surrogate key into chunks computed and materialised one after the other (with
        Ibis ``cache``, on the tables' backend), which bounds the memory of the run.
    known : KnownSchema, optional
        The survey registry and the features schema of ``groups``, when the caller has
        them (:class:`segflow.features._core.KnownSchema`; default: read and built here).

    Returns
    -------
    ibis.Table
        Materialised on the tables' backend (an Ibis cached table: release it when done;
        caching it again would copy it). Column ``snapshot_date`` (date) followed by exactly
        the columns of
        ``customer_features(tables, s, window_days=window_days, groups=groups)``; its rows
        equal the union over ``s`` of those tables (money is summed exactly in both, as
        decimals of six places, so the money features are equal, not close; other floats
        agree to rounding). Row order is unspecified.

    Raises
    ------
    InputError
        When ``dates`` is empty, ``chunk_customers`` is not positive, or as
        :func:`customer_features`.

    Notes
    -----
    Computed in one pass over the history (module docstring): groups ``rfm``,
    ``seasonality``, ``web``, ``breadth``, ``attribute`` and the order-value columns of
    ``pattern``. Computed per snapshot and joined: the inter-purchase, top-category and
    main-channel columns of ``pattern``, and the groups ``campaign`` and ``survey``.
    """
    return _snapshot_features(tables, dates, window_days=window_days, groups=groups,
                              columns=columns, chunk_customers=chunk_customers,
                              with_state=False, known=known)[0]


def snapshot_features_and_state(
    tables: Mapping[str, ibis.Table],
    dates: Sequence[dt.date],
    *,
    window_days: int | None = None,
    groups: Collection[str] | None = None,
    columns: Collection[str] | None = None,
    chunk_customers: int | None = None,
    known: KnownSchema | None = None,
) -> tuple[ibis.Table, ibis.Table]:
    """:func:`snapshot_features` and the feature state at the last of ``dates``
    (:func:`segflow.features._state.feature_state`: same rows and values), from the same
    pass: each chunk's state is computed from its period-tagged lines and order periods
    while they are materialised (no second read of the history) and materialised itself
    (one row per customer, exact measures), then the chunk's intermediate tables are
    released. The state is returned materialised: the caller releases it once written
    (:func:`segflow.features._stored_state.write_state`). ``known``: as for
    :func:`snapshot_features`."""
    features, state = _snapshot_features(
        tables, dates, window_days=window_days, groups=groups, columns=columns,
        chunk_customers=chunk_customers, with_state=True, known=known)
    assert state is not None
    return features, state


def _snapshot_features(
    tables: Mapping[str, ibis.Table],
    dates: Sequence[dt.date],
    *,
    window_days: int | None,
    groups: Collection[str] | None,
    columns: Collection[str] | None,
    chunk_customers: int | None,
    with_state: bool,
    known: KnownSchema | None = None,
) -> tuple[ibis.Table, ibis.Table | None]:
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise InputError(f"snapshot_features needs the tables {', '.join(missing)}")
    tables = text_columns(tables)
    unique = sorted({as_date(d) for d in dates})
    if not unique:
        raise InputError("snapshot_features needs at least one snapshot date")
    if window_days is not None and window_days <= 0:
        raise InputError(f"window_days must be a positive number of days, got {window_days}")
    wanted = _check_groups(groups)
    known = known or KnownSchema()
    schema = known.of_groups(groups)
    if schema is None:
        schema = customer_features(tables, unique[0], window_days=window_days, groups=groups,
                                   survey=known.survey).schema()
    if columns is not None:
        keep = set(columns) | {"customer_id"}
        schema = ibis.schema({n: t for n, t in schema.items() if n in keep})
    if chunk_customers is not None and chunk_customers <= 0:
        raise InputError(f"chunk_customers must be a positive number, got {chunk_customers}")
    periods = Periods(tuple(unique))
    # the survey's questions and their kinds come from the whole table, as in customer_features
    survey = ({} if "survey" not in wanted else known.survey if known.survey is not None
              else survey_registry(tables["survey_responses"]))
    survey = {name: entry for name, entry in survey.items() if name in schema}
    keys = _customer_keys(tables, periods).cache()
    n_keys = int(keys.count().execute())
    size = max(1, chunk_customers or CHUNK_CUSTOMERS)
    chunks, states = [], []
    for lo in range(0, max(n_keys, 1), size):  # keys are 0, 1, ... n_keys - 1
        # materialised: on a filter of the cached keys DuckDB's plan for the joins below
        # (every line and web event of the chunk) took 6-9x the CPU at 10M customers
        part = keys.filter(keys._ck.between(lo, lo + size - 1)).cache()
        held: list[ibis.Table] = [part]
        pending: list[ibis.Table] | None = [] if with_state else None
        chunks.append(_chunk(tables, part, periods, window_days, wanted, schema, survey,
                             held, pending).cache())
        states += [s.cache() for s in pending or []]  # while its inputs exist
        for table in held:  # the chunk's intermediate tables, no longer needed
            table.release()
    keys.release()
    # One materialised table each: the chunks copied into it and released, so that the run
    # never holds two copies of the features (caching a cached table copies it again).
    features = _materialised(chunks)
    return features, _materialised(states) if with_state else None


def _materialised(tables: list[ibis.Table]) -> ibis.Table:
    """The union of cached ``tables`` as one cached table (the one table itself, or their
    union cached, the parts then released)."""
    if len(tables) == 1:
        return tables[0]
    whole = _union(tables).cache()
    for table in tables:
        table.release()
    return whole


def _union(tables: list[ibis.Table]) -> ibis.Table:
    return tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=False)


#: Families of columns :func:`snapshot_features` computes only when one of them is asked for
#: (``columns``): the per-snapshot parts of ``pattern``, and the one-pass parts of ``breadth``
#: and ``web`` (their own deltas); :func:`segflow.pipeline.required_feature_columns` leaves out
#: those no scheme reads.
OPTIONAL_FAMILIES = (
    ("ipt_mean_days", "ipt_cv"),
    ("top_category", "top_category_share", "category_count"),
    ("main_channel", "main_channel_share", "channel_count"),
    ("products_total", "products_12m"),
    ("categories_total", "categories_12m"),
    ("product_views_90d", "cart_adds_90d", "days_since_last_visit"),
    ("cart_abandonment_rate_90d",),
    ("browse_to_buy_90d",),
    ("visits_90d",),
)


#: Customers per chunk of :func:`snapshot_features` (each chunk is computed and materialised
#: on its own, so the working set is bounded by the chunk, not the customer base: about
#: 1 GB of DuckDB memory per 100,000 customers of 24 monthly snapshots).
CHUNK_CUSTOMERS = 200_000

#: The same on Spark (:func:`segflow.warehouse.run_on_warehouse`): Spark's cached tables and
#: shuffles spill to disk, so a chunk need not fit in memory, while every chunk is a plan of
#: hundreds of Spark stages whose fixed cost does not shrink with the chunk.
SPARK_CHUNK_CUSTOMERS = 1_000_000


def _chunk(
    tables: Mapping[str, ibis.Table],
    keys: ibis.Table,
    periods: Periods,
    window_days: int | None,
    wanted: set[str],
    schema: ibis.Schema,
    survey: dict,
    held: list[ibis.Table],
    state: list[ibis.Table] | None = None,
) -> ibis.Table:
    """The result of :func:`snapshot_features` for the customers of ``keys`` (``_cid``,
    ``_ck``): the period-tagged lines, order periods and web days are materialised first
    (each read by several delta parts; appended to ``held``, for the caller to release once
    the result is materialised), then one query builds the grid. With a list ``state``,
    the chunk's feature state at the last snapshot (a query on the same materialised tables,
    keyed by the original ids) is appended to it."""
    keyed = {name: _keyed(tables[name], keys) for name in ("customers", "transactions", "events")}
    lines = purchases.period_lines(keyed["transactions"], periods).cache()
    held.append(lines)
    # the order periods feed the order and season deltas, the web days two delta parts:
    # materialised once rather than computed by every part that reads them
    per = purchases.order_periods(lines, periods, window_days).cache()
    held.append(per)
    n = periods.n
    # one (customer, period) table per family of deltas, each narrow; their running values
    # are computed on their own rows and joined onto the grid
    mins, maxs = purchases.MINS, (*purchases.MAXS, *web.MAXS)
    families = [
        union_deltas(purchases.order_deltas(per, window_days), mins, maxs, n=n),
        union_deltas(purchases.line_deltas(lines, periods, window_days), mins, n=n),
    ]
    if "seasonality" in wanted:
        families.append(purchases.season_deltas(per))
    if state is not None:
        # the order, line and season deltas feed the grid and the state: materialised once
        # (the state's query computed them again: a sixth of the one pass's CPU at 1M)
        families = [f.cache() for f in families]
        held.extend(families)
        d, _ = period_deltas(lines, per, periods, window_days, 1, grouped=families[:2],
                             season=families[2] if "seasonality" in wanted else None)
        d = d.join(keys, d.customer_id == keys._ck)
        state.append(d.select(customer_id=d._cid, **{m: d[m] for m in MEASURES}))
    cols = set(schema)
    web_measures = {m for c, ms in web.NEEDS.items() if c in cols for m in ms}
    if "web" in wanted and web_measures:
        days = web.web_days(keyed["events"], periods).cache()
        held.append(days)
        families.append(union_deltas(web.web_day_deltas(days, periods, web_measures), maxs=maxs,
                                     n=n))
    items = [i for i, c in (("product_id", "products"), ("category", "categories"))
             if {f"{c}_total", f"{c}_12m"} & cols]
    if "breadth" in wanted and items:
        families.append(union_deltas(purchases.breadth_deltas(lines, periods, items), n=n))

    grid = _grid(keyed["customers"], lines, periods)
    g = running_onto(grid, families, mins, maxs, n)
    out = g.mutate(**one_pass_features(g, wanted, cols))
    if "attribute" in wanted:
        out = _left_join_keyed(out, [_attributes(keyed["customers"], periods)])
    # back to the original customer ids, then the per-snapshot parts (keyed by them)
    out = out.join(keys, out.customer_id == keys._ck).drop("customer_id", "_ck")
    out = out.rename(customer_id="_cid")
    extra = _per_snapshot_parts(_only(tables, keys), periods, window_days, wanted, list(schema),
                                survey)
    out = _left_join_keyed(out, extra)

    fills = {n: out[n].fill_null(0) for n in _ZERO_WHEN_ABSENT if n in schema}
    if "same_season_flag" in schema:
        fills["same_season_flag"] = out.same_season_flag.fill_null(False)
    out = out.mutate(**fills)
    return out.select(
        "snapshot_date", **{name: out[name].cast(dtype) for name, dtype in schema.items()}
    )


def _only(tables: Mapping[str, ibis.Table], keys: ibis.Table) -> dict[str, ibis.Table]:
    """The tables with only the rows of the customers of ``keys`` (a semi-join)."""
    out = dict(tables)
    for name in ("transactions", "campaign_exposures", "survey_responses"):
        t = tables[name]
        out[name] = t.filter(t.customer_id.cast("string").isin(keys._cid))
    return out


def _customer_keys(tables: Mapping[str, ibis.Table], periods: Periods) -> ibis.Table:
    """Integer surrogate keys ``_ck`` (0, 1, ... in id order) for the customer ids ``_cid``
    of the customers, transactions and events: the heavy grouping, windows and joins run on
    them instead of strings."""
    end = periods.end_ts()
    ids = []
    for name in ("customers", "transactions", "events"):
        t = tables[name]
        t = t.filter(t.customer_id.notnull())
        if name != "customers":
            t = t.filter(t.ts.notnull(), t.ts < end)
        ids.append(t.select(_cid=t.customer_id.cast("string")).distinct())
    u = ibis.union(*ids, distinct=True)
    return u.mutate(_ck=ibis.row_number().over(order_by="_cid").cast("int64"))


def _keyed(t: ibis.Table, keys: ibis.Table) -> ibis.Table:
    """``t`` (rows with a customer id) with ``customer_id`` replaced by its surrogate key."""
    j = t.join(keys, t.customer_id.cast("string") == keys._cid)
    return j.select(*[c for c in t.columns if c != "customer_id"], customer_id=j._ck)


def _grid(customers: ibis.Table, lines: ibis.Table, periods: Periods) -> ibis.Table:
    """One row per (customer, snapshot ``_k``) from the first snapshot that knows the customer
    (sign-up or any transaction row before it), with ``snapshot_date``, ``_sday`` and the
    sign-up day ``_cd`` with its period ``_kc``."""
    c = customers.filter(customers.customer_id.notnull())
    created = c.group_by("customer_id").aggregate(
        _created=c.created_at.min()
    )
    created = created.filter(created._created.notnull())
    created = created.mutate(_cd=created._created.date().epoch_days().cast("int64"))
    created = periods.lookup(created, "_cd", {"_kc": 0})
    null = ibis.null("int64")
    first = lines.group_by("customer_id").aggregate(_kl=lines._k.min())
    u = ibis.union(
        created.select("customer_id", "_kc", "_cd", _kl=null),
        first.select("customer_id", _kc=null, _cd=null, _kl=first._kl),
        distinct=False,
    )
    e = u.group_by("customer_id").aggregate(_kc=u._kc.min(), _cd=u._cd.min(), _kl=u._kl.min())
    k0 = ibis.ifelse(
        e._kc.isnull(), e._kl, ibis.ifelse(e._kl.isnull() | (e._kc <= e._kl), e._kc, e._kl)
    )
    e = e.mutate(_k0=k0)
    e = e.filter(e._k0 <= periods.n)
    snaps = periods.snapshots()
    return e.join(snaps, snaps._k >= e._k0).drop("_k0", "_kl")


def _attributes(customers: ibis.Table, periods: Periods) -> ibis.Table:
    """The customer row valid at each snapshot (the rule of ``customer_records``), as
    ``(customer_id, _k, attribute columns)``: each row is expanded over the snapshots of its
    validity and the winner picked per (customer, snapshot)."""
    c = customers.filter(customers.customer_id.notnull())
    none = ibis.null("timestamp")
    c = c.mutate(
        _vf=c.valid_from if "valid_from" in c.columns else none,
        _vt=c.valid_to if "valid_to" in c.columns else none,
    )
    c = c.mutate(
        # valid from the later of valid_from and created_at (the rule of customer_records)
        _vfd=known_from(c._vf, c.created_at).date().epoch_days().cast("int64").fill_null(
            periods.days[0] - 1),
        _vtd=c._vt.date().epoch_days().cast("int64").fill_null(periods.days[-1]),
    )
    c = periods.lookup(c, "_vfd", {"_ka": 0})
    c = periods.lookup(c, "_vtd", {"_kb": 0})
    c = c.mutate(_kb=ibis.ifelse(c._vt.isnull(), periods.n + 1, c._kb))
    snaps = periods.snapshots().select("_k")
    v = c.join(snaps, (snaps._k >= c._ka) & (snaps._k < c._kb))
    order = [v._vf.isnull(), ibis.desc(v._vf), v.created_at.isnull(), v.created_at]
    order += [v[name] for name in ("source_file", "source_row") if name in v.columns]
    v = v.mutate(
        _rn=ibis.row_number().over(group_by=["customer_id", "_k"], order_by=order)
    )
    v = v.filter(v._rn == 0)
    return v.select(
        customer_id=v.customer_id,
        _k=v._k,
        **{name: v[name].cast("string") for name in ATTRIBUTE_COLUMNS},
    )


def _per_snapshot_parts(
    tables: Mapping[str, ibis.Table],
    periods: Periods,
    window_days: int | None,
    wanted: set[str],
    columns: list[str],
    survey: dict,
) -> list[ibis.Table]:
    """The columns not (yet) computed in one pass: the readable per-snapshot functions, one
    union over the snapshots per family, keyed by ``(customer_id, _k)``."""
    cols = set(columns)
    families: dict[str, list[ibis.Table]] = {}
    for k, s in enumerate(periods.dates, start=1):
        frame = Frame(snapshot=s, window_days=window_days)
        parts: dict[str, ibis.Table] = {}
        if wanted & {"pattern", "campaign"}:
            lines = prepare_lines(tables["transactions"], frame)
            orders = order_table(lines)
        if "pattern" in wanted and {"ipt_mean_days", "ipt_cv"} & cols:
            parts["ipt"] = interpurchase_features(orders, frame)
        if "pattern" in wanted and {"top_category", "top_category_share", "category_count"} & cols:
            parts["cat"] = top_share(lines, frame, "category", "top_category", "category_count")
        if "pattern" in wanted and {"main_channel", "main_channel_share", "channel_count"} & cols:
            parts["chan"] = top_share(lines, frame, "channel", "main_channel", "channel_count")
        if "campaign" in wanted:
            parts["campaign"] = campaign_features(tables["campaign_exposures"], lines, frame)
        answers = survey_features(tables["survey_responses"], frame, survey)
        if answers is not None:
            parts["survey"] = answers
        for name, part in parts.items():
            keep = [c for c in part.columns if c in columns and c != "customer_id"]
            families.setdefault(name, []).append(
                part.select(customer_id=part.customer_id.cast("string"), _k=ibis.literal(k, "int64"),
                            **{c: part[c] for c in keep})
            )
    return [
        fam[0] if len(fam) == 1 else ibis.union(*fam, distinct=False)
        for fam in families.values()
    ]


def _left_join_keyed(base: ibis.Table, parts: list[ibis.Table]) -> ibis.Table:
    """Left-join ``(customer_id, _k)``-keyed tables onto ``base`` in one join chain."""
    out = base
    drop = []
    for i, part in enumerate(parts):
        cid, k = f"_cid{i}", f"_kk{i}"
        part = part.rename({cid: "customer_id", k: "_k"})
        out = out.left_join(part, (base.customer_id == part[cid]) & (base._k == part[k]))
        drop += [cid, k]
    return out.drop(*drop)
