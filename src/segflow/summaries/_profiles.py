"""Segment profiles of every rule-based scheme at once: one grouped query, one shared base.

:func:`segflow.segments.profile_segments` per scheme recomputes the base (mean, population
standard deviation and exact median of every numeric feature over the profiled customers)
and runs one query per scheme. Here the per-segment means and medians of all schemes are one
group-by on (scheme, segment) over the latest features joined with every scheme's
assignments, and the base is computed once over the customers assigned in any scheme; a
scheme whose profiled customers are not all of those (fewer assigned) gets its own base in
the same kind of grouped query. Same definitions and results as ``profile_segments`` (see
:mod:`segflow.segments._profile`); cluster schemes, whose suggested names also read the
categorical make-up, go through ``profile_segments``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from segflow.features import money_sum
from segflow.segments._means import MeanShape, exact_mean, mean_shapes
from segflow.segments._profile import (
    fits_medians,
    median_budget,
    median_of,
    medians_in_batches,
    settled,
)
from segflow.store import Store


def features_snapshot(store: Any) -> dt.date | None:
    """The snapshot of the stored ``customer_features`` (the latest), computed by the store's
    engine (an Ibis expression: a DuckDB store or a Spark warehouse's run); None when empty."""
    t = store.table("customer_features")
    return t.snapshot_date.max().to_pyarrow().as_py()


def _numeric(features: ibis.Table) -> list[str]:
    from segflow.segments._profile import _columns

    return _columns(features, "customer_id", None, [])[0]


def _base(joined: ibis.Table, numeric: list[str], by: list[str], rows: int,
          shapes: dict[str, MeanShape]) -> pd.DataFrame:
    """Mean, population std and median per feature (columns m{i}, s{i}, q{i}) by ``by``;
    ``rows``: at least the rows of ``joined`` (the medians in the same query when they fit);
    ``shapes``: the features' :func:`mean_shapes` over at least those rows."""
    budget = median_budget(joined)
    one = fits_medians(rows, numeric, budget)
    metrics: dict[str, Any] = {"n": joined.count()}
    for i, f in enumerate(numeric):
        x = joined[f].cast("float64")
        metrics[f"m{i}"] = exact_mean(joined[f], shapes[f], metrics["n"])
        metrics[f"s{i}"] = x.std(how="pop")
        if one:
            metrics[f"q{i}"] = median_of(joined[f])
    q = joined.group_by(by).aggregate(**metrics) if by else joined.aggregate(**metrics)
    out = q.to_pandas()
    cols = [c for c in out.columns if c[0] in "ms" and c[1:].isdigit()]
    out[cols] = settled(out[cols].astype(float))
    if one:
        return out
    medians = medians_in_batches(joined, numeric, by, int(out["n"].sum()), budget)
    if by:
        return out.merge(medians, on=by, how="left")
    return pd.concat([out, medians.drop(columns=by)], axis=1)


def _scheme_batches(sizes: pd.Series, features: int, budget: int) -> list[list[str]]:
    """The schemes (``sizes``: assigned customers per scheme) in batches whose medians fit in
    ``budget`` values together (:func:`segflow.segments._profile.median_budget`); a scheme too
    large alone is a batch of its own (:func:`medians_in_batches` then splits its features)."""
    batches: list[list[str]] = []
    rows = 0
    for scheme, size in sizes.items():
        if batches and (rows + int(size)) * max(features, 1) <= budget:
            batches[-1].append(scheme)
            rows += int(size)
        else:
            batches.append([scheme])
            rows = int(size)
    return batches


def rule_profiles(store: Store | Any, schemes: Sequence[str], *, snapshot: dt.date | None = None,
                  ) -> tuple[dt.date | None, dict[str, tuple[pd.DataFrame, pd.DataFrame]]]:
    """``(snapshot, {scheme: (segments, long)})``: the frames of
    :func:`segflow.summaries._write.profile_summary` (rule-based) for every scheme of
    ``schemes`` with assignments at the latest ``customer_features`` snapshot (schemes
    without any are left out); ``snapshot``: that snapshot when the caller read it
    (:func:`features_snapshot`; read here when None)."""
    from segflow.segments._profile import _split, _top_features

    if "customer_features" not in store.tables() or not schemes:
        return None, {}
    snapshot = snapshot if snapshot is not None else features_snapshot(store)
    if snapshot is None:
        return None, {}
    features = store.table("customer_features")
    features = features.filter(features.snapshot_date == snapshot).drop("snapshot_date")
    numeric = _numeric(features)
    value_col = "monetary" if "monetary" in features.columns else None
    names = ibis.memtable(pa.table({"n_scheme": pa.array(list(schemes), pa.string())}))
    a = store.table("segment_assignments")
    a = a.filter(a.snapshot_date == snapshot)
    a = a.join(names, a.scheme == names.n_scheme).select(
        "scheme", "customer_id", "segment", segment_rank=a.segment_rank.fill_null(10_000))
    a = a.cache()
    try:
        joined = features.inner_join(a, "customer_id")
        rows = int(a.count().execute())  # at least the joined rows (a is materialised)
        # what each feature's values hold: the exact means without the sums none needs
        shapes = mean_shapes(features, numeric, rows) if numeric else {}
        budget = median_budget(joined)
        one = fits_medians(rows, numeric, budget)  # every median in the query of the means
        metrics: dict[str, Any] = {"size": joined.count(), "segment_rank": joined.segment_rank.min()}
        if value_col is not None:
            metrics["value"] = money_sum(joined[value_col])
        for i, f in enumerate(numeric):
            metrics[f"m{i}"] = exact_mean(joined[f], shapes[f], metrics["size"])
            if one:
                metrics[f"q{i}"] = median_of(joined[f])
        per_seg = joined.group_by("scheme", "segment").aggregate(**metrics).to_pandas()
        sizes = per_seg.groupby("scheme")["size"].sum()
        if not one and len(per_seg):
            medians = [medians_in_batches(joined.filter(joined.scheme.isin(batch)), numeric,
                                           ["scheme", "segment"], int(sizes[batch].sum()), budget)
                       for batch in _scheme_batches(sizes, len(numeric), budget)]
            per_seg = per_seg.merge(pd.concat(medians, ignore_index=True),
                                    on=["scheme", "segment"], how="left")
        # the base: over the customers assigned in any scheme, unless a scheme covers fewer
        anyone = a.select("customer_id").distinct()
        union = features.semi_join(anyone, "customer_id")
        shared = _base(union, numeric, [], rows, shapes)
        own = [s for s in sizes.index if int(sizes[s]) != int(shared["n"].iloc[0])]
        bases = {s: shared.iloc[0] for s in sizes.index if s not in own}
        if own:
            j = joined.filter(joined.scheme.isin(own))
            for _, row in _base(j, numeric, ["scheme"], rows, shapes).iterrows():
                bases[row["scheme"]] = row
    finally:
        a.release()
    out: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for scheme, part in per_seg.groupby("scheme", sort=False):
        part = part.sort_values(["segment_rank", "segment"]).reset_index(drop=True)
        row = bases[scheme]
        base = pd.DataFrame({f: [row[f"m{i}"], row[f"s{i}"], row[f"q{i}"]] for i, f in enumerate(numeric)},
                            index=["mean", "std", "median"]).astype(float)
        table, means, medians = _split(part, numeric)
        std_diff = (means - base.loc["mean"]) / base.loc["std"].replace(0.0, np.nan)
        seg = pd.DataFrame({"scheme": scheme, "snapshot_date": snapshot, "segment": table["segment"],
                            "name": table["segment"], "suggested_name": None,
                            "distinguishing": [_top_features(std_diff.loc[s]) for s in table["segment"]]})
        long = means.stack(future_stack=True).rename("mean").to_frame()
        long["median"] = medians.stack(future_stack=True)
        long["std_diff"] = std_diff.stack(future_stack=True)
        long = long.rename_axis(["segment", "feature"]).reset_index()
        b = base.T
        long["base_mean"] = long["feature"].map(b["mean"])
        long["base_std"] = long["feature"].map(b["std"])
        long["base_median"] = long["feature"].map(b["median"])
        long.insert(0, "snapshot_date", snapshot)
        long.insert(0, "scheme", scheme)
        out[str(scheme)] = (seg, long)
    return snapshot, out
