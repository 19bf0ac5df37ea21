"""Real-time scoring of one customer from posted rows, without a query engine per request.

Built once per copy of the store and snapshot (in a background thread when a copy is
swapped in), then each request is plain Python on one customer's rows (about a millisecond):

1. features: :class:`segflow.server._fast_features.FeatureComputer`, the definitions of
   :func:`segflow.features.customer_features` on the posted transactions, events, survey
   answers and attributes (``ts < s``);
2. segments: quantile schemes (RFM scores, value tiers, rules naming RFM scores) score
   against the cut points of the stored features at the snapshot
   (:func:`segflow.segments._rfm.rfm_cut_points`, :func:`segflow.segments._buckets.value_tier_thresholds`;
   per parent segment in nested schemes); by construction a stored customer gets exactly their
   stored segment, a new one the segment they would have had among the base. Frozen cut-offs
   (``cutoffs = "reference"|"fixed"``) are used as they are. The segment expressions are the
   engine's own (rules, lifecycle buckets, RFM grid, value tiers, cluster scores), built once
   on an unbound table and evaluated on the row by :mod:`segflow.server._fast_eval`;
3. scores: the BG/NBD and spend models saved by ``segflow run`` (table ``model_params``; a
   store written before it was added gets them refitted once) give P(alive), expected
   purchases, P(no purchase), expected spend and the discounted 52-week CLV.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np

from segflow.config import SchemeSettings
from segflow.errors import SegflowError
from segflow.server._fast_eval import UnsupportedExpression, compile_row
from segflow.server._fast_features import Answer, Event, Exposure, FeatureComputer, Line

Row = dict[str, Any]
SegmentFn = Callable[[Row], "str | None"]
_SCORE_COLUMNS = ("r_score", "f_score", "m_score", "fm_score")


@dataclass
class _Context:
    features: ibis.Table  # stored features at the snapshot (engine)
    unbound: ibis.Table  # the same columns, unbound, plus the RFM score columns
    store: Any
    schemes: Sequence[SchemeSettings]
    snapshot: dt.date


def _unbound(features: ibis.Table) -> ibis.Table:
    schema = dict(features.schema().items())
    schema.pop("snapshot_date", None)
    schema.update({c: ibis.dtype("int64") for c in _SCORE_COLUMNS})
    schema["_parent"] = ibis.dtype("string")
    return ibis.table(schema, name="segflow_score_row")


def _rfm_scorer(scheme: SchemeSettings, cuts: dict[str, list[float]], u: ibis.Table) -> Callable[[Row], dict[str, Any]]:
    """r/f/m/fm scores of a row against cut points (the engine's ``cut_score`` expressions)."""
    from segflow.segments._rfm import RFM_INPUTS, WINDOW_SCORED, in_window, window_score
    from segflow.segments._scores import comparable, cut_score

    def expr(col: str, higher: bool) -> ibis.IntegerValue:
        score = cut_score(comparable(u, col), cuts[col], higher_is_better=higher)
        # F and M of a buyer without an order in the window: 1 (segflow.segments._rfm)
        return window_score(in_window(u), score) if col in WINDOW_SCORED else score

    fns = {score: compile_row(expr(col, higher)) for score, col, higher in RFM_INPUTS}

    def scores(row: Row) -> dict[str, Any]:
        if row.get("recency_days") is None:
            return dict.fromkeys(_SCORE_COLUMNS)
        out = {k: f(row) for k, f in fns.items()}
        out["fm_score"] = (out["f_score"] + out["m_score"]) // 2
        return out
    return scores


def _rfm_cuts(scheme: SchemeSettings, table: ibis.Table) -> dict[str, list[float]]:
    from segflow.segments._assign import scheme_bins
    from segflow.segments._rfm import rfm_cut_points

    if scheme.cutoffs != "per_snapshot" and scheme.cut_points:
        return {k: list(v) for k, v in scheme.cut_points.items()}
    if scheme.score_method == "ntile":
        raise SegflowError(f"scheme {scheme.name!r}: score_method = 'ntile' splits ties by customer id, "
                           "which no cut point reproduces")
    return rfm_cut_points(table, bins=scheme_bins(scheme))


def _flat_plan(scheme: SchemeSettings, table: ibis.Table, ctx: _Context) -> SegmentFn:
    """The segment function of a flat scheme whose quantiles are taken over ``table``."""
    from segflow.segments._assign import _SCORES, scheme_bins
    from segflow.segments._buckets import (
        BROWSE_BUCKETS,
        BROWSE_DEFAULT,
        bucket_expr,
        lifecycle_buckets,
        value_tier_expr,
        value_tier_thresholds,
    )
    from segflow.segments._rfm import rfm_segment_expr
    from segflow.segments._rules import compile_rules

    u = ctx.unbound
    kind = scheme.kind
    if kind == "rfm":
        scores = _rfm_scorer(scheme, _rfm_cuts(scheme, table), u)
        segment = compile_row(rfm_segment_expr(u, bins=scheme_bins(scheme)))
        return lambda row: segment({**row, **scores(row)})
    if kind == "lifecycle":
        buckets, default = lifecycle_buckets(
            active_days=scheme.active_days, loyal_orders_12m=scheme.loyal_orders_12m,
            decline_ratio=scheme.decline_ratio, min_prior_orders=scheme.min_prior_orders,
            seasonal=scheme.seasonal)
        return compile_row(bucket_expr(buckets, default.name, u))
    if kind == "browse_no_buy":
        return compile_row(bucket_expr(BROWSE_BUCKETS, BROWSE_DEFAULT.name, u))
    if kind == "value_tiers":
        if scheme.cutoffs != "per_snapshot":
            thresholds = list(scheme.cut_points["value"])
        else:
            if scheme.score_method == "ntile":
                raise SegflowError(f"scheme {scheme.name!r}: score_method = 'ntile' is not reproducible by thresholds")
            thresholds = value_tier_thresholds(table, tiers=scheme.tiers, value=scheme.value_feature)
        expr = value_tier_expr(u, tiers=scheme.tiers, value=scheme.value_feature, thresholds=thresholds)
        return compile_row(expr.segment)
    if kind == "rules":
        if not scheme.rules:
            raise SegflowError(f"scheme {scheme.name!r} (kind 'rules') has no rules")
        segment = compile_row(compile_rules([(r.segment, r.when) for r in scheme.rules], u, default=scheme.default))
        if any(_SCORES.search(r.when) for r in scheme.rules):
            scores = _rfm_scorer(scheme, _rfm_cuts(scheme, table), u)
            return lambda row: segment({**row, **scores(row)})
        return segment
    raise SegflowError(f"scheme {scheme.name!r}: kind {kind!r} is not scored in real time")


def _cluster_plan(scheme: SchemeSettings, ctx: _Context) -> SegmentFn:
    from segflow.segments._cluster_scheme import load_cluster_model

    model = load_cluster_model(ctx.store, scheme.name, scheme.version)
    if model is None:
        raise SegflowError(f"cluster scheme {scheme.name!r} has no saved model (run `segflow run` first)")
    design = list(model.prep.design_columns(ctx.unbound).values())
    scores = [compile_row(model._score_expr([d for d in design], j)) for j in range(model.k)]
    labels = model.labels(scheme.names)

    def segment(row: Row) -> str:
        values = [f(row) for f in scores]
        finite = [v for v in values if v is not None]
        best = min(finite) if finite else None
        for j, v in enumerate(values):
            if v is not None and v == best:
                return labels[j]
        return labels[0]
    return segment


def _plan(scheme: SchemeSettings, ctx: _Context, seen: tuple[str, ...] = ()) -> SegmentFn:
    from segflow.segments._assign import NEST_SEPARATOR, _resolve

    if scheme.kind == "cluster":
        return _cluster_plan(scheme, ctx)
    if not scheme.within:
        return _flat_plan(scheme, ctx.features, ctx)
    parent = _resolve(scheme.within, scheme, ctx.schemes, seen)
    parent_fn = _plan(parent, ctx, (*seen, scheme.name))
    child = scheme.model_copy(update={"within": None})
    # quantiles within each parent segment: the stored parent segments at the snapshot
    stored = ctx.store.table("segment_assignments")
    stored = stored.filter(stored.scheme == parent.name, stored.snapshot_date == ctx.snapshot)
    joined = ctx.features.join(stored.select("customer_id", _parent=stored.segment), "customer_id")
    parents = [r for r in joined.select("_parent").distinct().to_pyarrow()["_parent"].to_pylist()]
    per_parent = {p: _flat_plan(child, joined.filter(joined._parent == p), ctx) for p in parents}

    def segment(row: Row) -> str | None:
        p = parent_fn(row)
        if p is None:
            return None
        fn = per_parent.get(p)
        if fn is None:  # a parent segment nobody holds at the snapshot: quantiles of one
            fn = per_parent[p] = _flat_plan(child, ctx.features.filter(ibis.literal(False)), ctx)
        child_segment = fn(row)
        return None if child_segment is None else p + NEST_SEPARATOR + child_segment
    return segment


def _discount_steps(models: dict[str, Any]) -> tuple[np.ndarray, list[float]]:
    """The step ends of :func:`segflow.models._scoring.discounted_purchases` followed by the
    horizon, and each step's discount factor (computed once per scorer)."""
    from segflow.models._summary import unit_days

    horizon, rate = models["horizon"], models["annual_discount_rate"]
    units_per_year = 365.25 / unit_days(models["time_unit"])
    n_steps = max(1, math.ceil(horizon / units_per_year * 12 - 1e-9))
    ends = np.minimum(np.arange(1, n_steps + 1) * units_per_year / 12, horizon)
    return np.append(ends, horizon), [(1 + rate) ** (float(end) / units_per_year) for end in ends]


def _expected_at(model: Any, ts: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> list[float]:
    """Expected purchases of one customer over each horizon in ``ts``: one vectorised call
    where the model broadcasts ``t``, else one call per horizon (same values either way)."""
    values = np.asarray(model.expected_purchases(ts, x, t_x, T), dtype=float)
    if values.shape != ts.shape:
        values = np.array([float(model.expected_purchases(float(t), x, t_x, T)[0]) for t in ts])
    return [float(v) for v in values]


class Scorer:
    """Real-time scoring for one copy of the store and one stored snapshot of features."""

    def __init__(self, project: Any, snapshot: dt.date) -> None:
        from segflow.features import survey_registry
        from segflow.pipeline import resolve_schemes
        from segflow.segments import freeze_cutoffs

        self.snapshot = snapshot
        settings = project.settings
        store = project.store
        self.notes: list[str] = []
        tables = {name: store.table(name) for name in ("customers", "transactions", "events",
                                                       "campaign_exposures", "survey_responses")}
        schemes = resolve_schemes(settings)
        if any(s.cutoffs == "reference" and not s.cut_points for s in schemes):
            schemes = freeze_cutoffs(schemes, tables, window_days=settings.rfm.window_days)
        stored = store.table("customer_features")
        stored = stored.filter(stored.snapshot_date == snapshot).drop("snapshot_date")
        if int(stored.count().execute()) == 0:
            raise SegflowError(f"no stored features at {snapshot}: scoring needs a completed `segflow run`")
        self.features = FeatureComputer(snapshot, settings.rfm.window_days, survey_registry(tables["survey_responses"]))
        ctx = _Context(stored, _unbound(stored), store, schemes, snapshot)
        self.plans: dict[str, SegmentFn] = {}
        for scheme in schemes:
            try:
                self.plans[scheme.name] = _plan(scheme, ctx)
            except (SegflowError, UnsupportedExpression) as exc:
                self.notes.append(f"scheme {scheme.name} is not scored: {exc}")
        self.models = self._models(project)
        self._steps, self._discounts = _discount_steps(self.models) if self.models else (np.zeros(0), [])

    def _models(self, project: Any) -> dict[str, Any] | None:
        from segflow.models import load_model_params
        from segflow.models._run_scores import (
            CLV_ANNUAL_DISCOUNT_RATE,
            CLV_HORIZON_WEEKS,
            CLV_MODEL,
        )

        saved = load_model_params(project.store.raw, snapshot_date=self.snapshot, model=CLV_MODEL)
        if saved is not None:
            return saved
        # a store written before model_params existed: fit once, as `segflow run` did
        from segflow.models import BetaGeoModel, btyd_summary, compress, fit_spend_model

        try:
            summary = btyd_summary(project.store.table("transactions"), calibration_end=self.snapshot,
                                   time_unit="W", warn=False).cache()
            model = BetaGeoModel().fit(compress(summary))
            try:
                spend, _ = fit_spend_model(compress(summary, ("x", "monetary_value")))
            except SegflowError:
                spend = None
        except (SegflowError, ValueError) as exc:
            self.notes.append(f"no model scores: {exc}")
            return None
        self.notes.append("model parameters refitted (the store has no saved parameters; re-run `segflow run`)")
        return {"count": model, "spend": spend, "horizon": CLV_HORIZON_WEEKS, "time_unit": "W",
                "annual_discount_rate": CLV_ANNUAL_DISCOUNT_RATE}

    def score(self, customer_id: str, lines: Sequence[Line], events: Sequence[Event] = (),
              answers: Sequence[Answer] = (), attributes: dict[str, Any] | None = None,
              exposures: Sequence[Exposure] = ()) -> dict[str, Any]:
        """Features, segment per scheme and model scores of one customer.

        Raises
        ------
        SegflowError
            When the customer is not known at the snapshot (no sign-up, no transaction before it).
        """
        row = self.features.compute(lines, events, answers, attributes, customer_id=customer_id, exposures=exposures)
        if row is None:
            raise SegflowError(f"no transactions before {self.snapshot} and no sign-up before it: nothing to score")
        segments = {name: fn(row) for name, fn in self.plans.items()}
        return {"segments": segments, "scores": self._scores(lines), "features": row}

    def _scores(self, lines: Sequence[Line]) -> dict[str, float | None] | None:
        """BTYD scores from the customer's purchase days before the snapshot (the definitions of
        :func:`segflow.models.btyd_summary`, weekly time unit); None without a purchase day."""
        if self.models is None:
            return None
        from segflow.models._summary import unit_days

        days: dict[dt.date, list[float]] = {}
        for ln in lines:
            day = ln.ts.date()
            if day >= self.snapshot:
                continue
            buy = not (bool(ln.is_return) or (ln.amount is not None and ln.amount < 0)) and ln.amount is not None and ln.amount >= 0
            if buy:
                days.setdefault(day, []).append(float(ln.amount))  # type: ignore[arg-type]
        if not days:
            return None
        ordered = sorted(days)
        first, last = ordered[0], ordered[-1]
        spend = {d: math.fsum(v) for d, v in days.items()}
        x = len(ordered) - 1
        unit = unit_days(self.models["time_unit"])
        t_x = (last - first).days / unit
        T = (self.snapshot - dt.timedelta(days=1) - first).days / unit
        repeat = math.fsum(spend.values()) - spend[first]
        mv = repeat / float(x) if x > 0 else None
        model, spend_model = self.models["count"], self.models["spend"]
        xs, txs, Ts = np.array([float(x)]), np.array([t_x]), np.array([T])
        horizon = self.models["horizon"]
        with np.errstate(all="ignore"):
            cumulative = _expected_at(model, self._steps, xs, txs, Ts)
            out: dict[str, float | None] = {
                "p_alive": float(model.p_alive(xs, txs, Ts)[0]),
                "expected_purchases": cumulative[-1],
                "p_no_purchase": float(model.p_no_purchase(horizon, xs, txs, Ts)[0]),
            }
        # segflow.models._scoring.discounted_purchases, same steps and the same order of sums
        total, previous = 0.0, 0.0
        for value, factor in zip(cumulative[:-1], self._discounts, strict=True):
            total += (value - previous) / factor
            previous = value
        disc = total
        if spend_model is None:
            return out
        if hasattr(spend_model, "params_"):
            p, q, gamma = (spend_model.params_[k] for k in ("p", "q", "gamma"))
            has = mv is not None and mv > 0 and x > 0
            xf, mf = (float(x), mv) if has else (0.0, 0.0)
            den = p * xf + (q - 1)
            expected = (p * (gamma + mf * xf)) / den if den > 0 else None
        else:
            expected = float(spend_model.value)
        out["expected_spend"] = expected
        out["clv"] = None if expected is None else 1.0 * expected * disc
        return out

