"""Segment profiles: size, value, feature means and medians, distinguishing features, make-up.

All per-customer work is one Ibis ``group_by`` per question, run in the engine; only the small
per-segment tables come back to Python.

Definitions (per segment ``s``, over the customers present in both the feature table and the
assignments):

``size``, ``share``
    customers in ``s``; ``size / all customers``.
``value``, ``revenue_share``
    sum of ``value_col`` in ``s`` (net: returns count negative), summed exactly to a
    millionth of the currency unit (:func:`segflow.features.money_sum`); ``value / total
    value`` (missing when the total is not positive).
``mean__f``, ``median__f``
    mean and median (DuckDB: exact, interpolated) of feature ``f`` over customers with a value
    (the medians a few features a query beyond :data:`MEDIAN_VALUES` values: same results);
    means summed exactly (:func:`exact_mean`) and, with the base's standard deviations, kept
    to 12 significant digits (:func:`settled`), so that the order of a float sum does not show.
``std_diff``
    the standardised difference ``(mean_s(f) - mean(f)) / sd(f)`` with the base mean and the
    population standard deviation of all profiled customers (missing for a constant feature).
    The features with the largest ``|std_diff|`` distinguish the segment.
``makeup``
    for each categorical column, the share of each level in the segment and in the base
    (a missing value is the level ``"(missing)"``; beyond the 12 largest levels of the base,
    levels are pooled into ``"(other)"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from segflow._result import TableResult, json_records, jsonable
from segflow.errors import InputError
from segflow.segments._means import MeanShape, exact_mean, mean_shapes
from segflow.segments._naming import NAME_THRESHOLD, suggest_names

if TYPE_CHECKING:
    import plotly.graph_objects as go

MAX_MAKEUP_LEVELS = 12
TOP_FEATURES = 3
_SKIP = {"snapshot_date", "run_id", "load_id", "source", "source_file", "source_row", "segment_rank"}


#: The most values the exact medians of one query may hold (rows x features): DuckDB keeps
#: every value of a median's group in memory and does not spill them, so at 10M customers x 6
#: schemes x 40 features (19 GB) one query was killed by the kernel. Beyond the budget
#: (:func:`median_budget`: this, or less where the engine's memory limit is smaller) the
#: medians are taken a few features at a time; the results are the same.
MEDIAN_VALUES = 250_000_000

#: Bytes of the engine's memory limit budgeted per value the medians hold: measured about
#: 16 at 1M customers (6 schemes x 37 features in one query, 214M values: peak RSS 3.5 GiB
#: against 2.0 GiB in batches of 100M values, docs/benchmarks.md); three times that, since
#: the query's join and the rest of the process use the same memory.
MEDIAN_BYTES_PER_VALUE = 48


def median_budget(t: ibis.Table) -> int:
    """The most values the exact medians of one query over ``t`` may hold: the DuckDB
    connection's ``memory_limit`` / :data:`MEDIAN_BYTES_PER_VALUE`, at most
    :data:`MEDIAN_VALUES` (the limit of any other engine)."""
    import duckdb

    from segflow.errors import StoreError
    from segflow.store._memory import memory_limit_bytes

    backend = t._find_backend()
    if getattr(backend, "name", None) != "duckdb":
        return MEDIAN_VALUES
    try:
        limit = memory_limit_bytes(backend.con)
    except (StoreError, duckdb.Error):  # a limit shown in an unknown form: the default
        return MEDIAN_VALUES
    return max(1, min(MEDIAN_VALUES, limit // MEDIAN_BYTES_PER_VALUE))


def fits_medians(rows: int, numeric: list[str], budget: int) -> bool:
    """Whether the exact medians of the features ``numeric`` over ``rows`` rows fit in one
    query of at most ``budget`` values (:func:`median_budget`)."""
    return rows * max(len(numeric), 1) <= budget


def medians_in_batches(t: ibis.Table, numeric: list[str], by: list[str], rows: int,
                       budget: int) -> pd.DataFrame:
    """Exact medians of the features ``numeric`` of ``t`` by ``by`` (one row when ``by`` is
    empty): columns ``by`` and ``q{i}`` (float64, ``i`` the feature's position in
    ``numeric``), in queries of at most ``budget`` values (:func:`median_budget`; ``rows``:
    at least the rows of ``t``), merged on ``by``."""
    step = max(1, budget // max(rows, 1))
    out: pd.DataFrame | None = None
    for start in range(0, len(numeric), step):
        metrics = {f"q{i}": median_of(t[numeric[i]])
                   for i in range(start, min(start + step, len(numeric)))}
        part = (t.group_by(by).aggregate(**metrics) if by else t.aggregate(**metrics)).to_pandas()
        if out is None:
            out = part
        else:
            out = out.merge(part, on=by) if by else pd.concat([out, part], axis=1)
    return out if out is not None else pd.DataFrame(columns=by)


class SegmentProfile(TableResult):
    """Profiles of the segments of one assignment (result contract).

    Attributes
    ----------
    table : DataFrame
        One row per segment: ``segment``, ``segment_rank``, ``size``, ``share``, ``value``,
        ``revenue_share``, ``suggested_name``, ``name`` (after overrides), ``distinguishing``.
    means, medians, std_diff : DataFrame
        Segments (rows, ``segment``) by numeric features.
    base : DataFrame
        Rows ``mean``, ``std``, ``median`` of every numeric feature over all profiled customers.
    makeup : DataFrame
        Long: ``segment``, ``column``, ``level``, ``count``, ``share``, ``base_share``.
    value_col : str or None
    """

    def __init__(
        self,
        table: pd.DataFrame,
        means: pd.DataFrame,
        medians: pd.DataFrame,
        std_diff: pd.DataFrame,
        base: pd.DataFrame,
        makeup: pd.DataFrame,
        value_col: str | None,
    ) -> None:
        self.table, self.means, self.medians, self.std_diff = table, means, medians, std_diff
        self.base, self.makeup, self.value_col = base, makeup, value_col

    def to_pandas(self) -> pd.DataFrame:
        """One row per segment: sizes, value, names, then ``mean__f`` and ``median__f``."""
        wide = self.table.set_index("segment")
        means = self.means.add_prefix("mean__")
        medians = self.medians.add_prefix("median__")
        return wide.join(means).join(medians).reset_index()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["std_diff"] = jsonable(self.std_diff.to_dict(orient="index"))
        out["base"] = jsonable(self.base.to_dict(orient="index"))
        out["makeup"] = json_records(self.makeup)
        out["value_col"] = self.value_col
        return out

    def figure(self, kind: str = "heatmap") -> go.Figure:
        """``kind``: "heatmap" (standardised feature profile), "snake" or "size" (size and
        value bars)."""
        from segflow.viz import _segments

        builders = {
            "heatmap": _segments.profile_heatmap,
            "snake": _segments.snake_plot,
            "size": _segments.segment_size_value_bars,
        }
        if kind not in builders:
            raise InputError(f"unknown profile figure {kind!r}; expected one of {sorted(builders)}")
        return builders[kind](self)

    def __repr__(self) -> str:
        return (
            f"SegmentProfile({len(self.table)} segments, {int(self.table['size'].sum())} customers, "
            f"{self.means.shape[1]} numeric features)"
        )


def profile_segments(
    features: ibis.Table,
    assignments: ibis.Table,
    *,
    value_col: str | None = "monetary",
    id_col: str = "customer_id",
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    names: dict[str, str] | None = None,
) -> SegmentProfile:
    """Profile the segments of ``assignments`` on ``features``.

    Parameters
    ----------
    features : ibis.Table
        One row per customer: ``id_col`` and feature columns (one snapshot).
    assignments : ibis.Table
        ``id_col``, ``segment`` and optionally ``segment_rank`` (segments are listed by rank,
        else by size).
    value_col : str or None, default="monetary"
        Feature summed for the revenue share; None (or absent) leaves value columns empty.
    numeric, categorical : list of str, optional
        Features to profile; default every numeric (and boolean) and every string column.
    names : dict, optional
        Overrides of suggested names, keyed by segment or suggested name.

    Returns
    -------
    SegmentProfile
    """
    numeric, categorical = _columns(features, id_col, numeric, categorical)
    if value_col is not None and value_col not in features.columns:
        value_col = None
    if value_col is not None and not features[value_col].type().is_numeric():
        # (summed as money, a text column was a DuckDB conversion traceback)
        raise InputError("the value column holds text, not numbers (a cell such as 'n/a' or "
                         "'12 EUR'); empty those cells or choose another value column",
                         column=value_col)
    keep = ["segment"] + (["segment_rank"] if "segment_rank" in assignments.columns else [])
    if "segment" not in assignments.columns or id_col not in assignments.columns:
        raise InputError(f"assignments need the columns {id_col!r} and 'segment'")
    joined = features.inner_join(assignments.select(id_col, *keep), id_col)
    # at least the joined rows (one per customer): every median in one query when they fit
    rows = int(features.count().execute())
    shapes = mean_shapes(features, numeric, rows) if numeric else {}
    per_seg = _segment_aggregates(joined, numeric, value_col, "segment_rank" in keep, rows, shapes)
    if per_seg.empty:
        raise InputError("no customer of the assignments is in the feature table", column=id_col)
    base = _base_aggregates(joined, numeric, rows, shapes)
    table, means, medians = _split(per_seg, numeric)
    std = base.loc["std"].replace(0.0, np.nan)
    std_diff = (means - base.loc["mean"]) / std
    makeup = _makeup(joined, categorical, table)
    ranks = pd.Series(range(1, len(table) + 1), index=table["segment"])
    makeup_ranked = makeup.assign(segment_rank=makeup["segment"].map(ranks))
    table["suggested_name"] = suggest_names(std_diff, makeup_ranked)
    overrides = names or {}
    table["name"] = [
        overrides.get(seg) or overrides.get(sug) or sug
        for seg, sug in zip(table["segment"], table["suggested_name"], strict=True)
    ]
    table["distinguishing"] = [_top_features(std_diff.loc[s]) for s in table["segment"]]
    return SegmentProfile(table, means, medians, std_diff, base, makeup, value_col)


def _columns(
    features: ibis.Table, id_col: str, numeric: list[str] | None, categorical: list[str] | None
) -> tuple[list[str], list[str]]:
    schema = features.schema()
    for col in (numeric or []) + (categorical or []):
        if col not in schema:
            from segflow._suggest import did_you_mean

            hint = did_you_mean(col, schema.names)
            raise InputError(f"unknown feature {col!r}; {hint}available: {sorted(schema.names)}", column=col)
    skip = _SKIP | {id_col, "segment"}
    if numeric is None:
        numeric = [n for n, t in schema.items() if n not in skip and (t.is_numeric() or t.is_boolean())]
    if categorical is None:
        categorical = [n for n, t in schema.items() if n not in skip and t.is_string()]
    return numeric, categorical


def _num(col: ibis.Value) -> ibis.Value:
    return col.cast("float64")


def median_of(col: ibis.Value) -> ibis.Value:
    """The exact (interpolated) median of ``col`` as float64: of an integer column its own
    values (DuckDB's quantile of integers interpolates in double: the same result as of the
    values cast, for the magnitudes of features, below 2**53, and 2-3x faster at 1M customers
    x 6 schemes, docs/benchmarks.md), of any other numeric or boolean column the values cast
    to float64."""
    if col.type().is_integer():
        return col.median().cast("float64")
    return col.cast("float64").median()


#: Significant digits kept of the profiles' means and standard deviations: a float64 mean is
#: summed in an order that depends on the engine and its threads, so its last digits vary
#: (0.9374999999999998 on one engine, 0.9375 on another, shown as 93.7 % and 93.8 %);
#: rounded to 12 significant digits it is the same everywhere (float noise is near the 16th).
PROFILE_DIGITS = 12


def settled(values: pd.Series | pd.DataFrame | np.ndarray | float) -> Any:
    """``values`` (floats) rounded to :data:`PROFILE_DIGITS` significant digits (NaN and 0
    unchanged): the same number whatever order a float sum behind it was taken in."""
    x = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(np.isfinite(x) & (x != 0), np.floor(np.log10(np.abs(x))), 0.0)
    scale = 10.0 ** (PROFILE_DIGITS - 1 - mag)
    out = np.where(np.isfinite(x), np.round(x * scale) / scale, x)
    if isinstance(values, pd.DataFrame):
        return pd.DataFrame(out, index=values.index, columns=values.columns)
    if isinstance(values, pd.Series):
        return pd.Series(out, index=values.index, name=values.name)
    return out if np.ndim(values) else float(out)


def _segment_aggregates(
    joined: ibis.Table, numeric: list[str], value_col: str | None, has_rank: bool, rows: int,
    shapes: dict[str, MeanShape],
) -> pd.DataFrame:
    from segflow.features import money_sum

    budget = median_budget(joined)
    one = fits_medians(rows, numeric, budget)
    metrics: dict[str, Any] = {"size": joined.count()}
    if has_rank:
        metrics["segment_rank"] = joined["segment_rank"].min()
    if value_col is not None:
        metrics["value"] = money_sum(joined[value_col])
    for i, f in enumerate(numeric):
        metrics[f"m{i}"] = exact_mean(joined[f], shapes[f], metrics["size"])
        if one:
            metrics[f"q{i}"] = median_of(joined[f])
    frame = joined.group_by("segment").aggregate(**metrics).to_pandas()
    if has_rank and frame["segment_rank"].isna().any():  # an unordered scheme's null ranks
        frame, has_rank = frame.drop(columns="segment_rank"), False
    if not one and len(frame):
        medians = medians_in_batches(joined, numeric, ["segment"], rows, budget)
        frame = frame.merge(medians, on="segment", how="left")
    if has_rank:
        frame = frame.sort_values(["segment_rank", "segment"])
    else:
        frame = frame.sort_values(["size", "segment"], ascending=[False, True])
    return frame.reset_index(drop=True)


def _base_aggregates(joined: ibis.Table, numeric: list[str], rows: int,
                     shapes: dict[str, MeanShape]) -> pd.DataFrame:
    if not numeric:
        return pd.DataFrame(index=["mean", "std", "median"])
    budget = median_budget(joined)
    one = fits_medians(rows, numeric, budget)
    metrics: dict[str, Any] = {}
    size = joined.count()
    for i, f in enumerate(numeric):
        metrics[f"m{i}"] = exact_mean(joined[f], shapes[f], size)
        metrics[f"s{i}"] = _num(joined[f]).std(how="pop")
        if one:
            metrics[f"q{i}"] = median_of(joined[f])
    row = joined.aggregate(**metrics).to_pandas().iloc[0]
    if not one:
        row = pd.concat([row, medians_in_batches(joined, numeric, [], rows, budget).iloc[0]])
    base = pd.DataFrame(
        {f: [row[f"m{i}"], row[f"s{i}"], row[f"q{i}"]] for i, f in enumerate(numeric)},
        index=["mean", "std", "median"],
    ).astype(float)
    # the float sums behind the mean and std are settled; a median is an order statistic
    # (exact, as the segments' medians and the stored profiles' base_median)
    base.loc[["mean", "std"]] = settled(base.loc[["mean", "std"]])
    return base


def _split(per_seg: pd.DataFrame, numeric: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    total = per_seg["size"].sum()
    table = pd.DataFrame({"segment": per_seg["segment"].astype(str)})
    table["segment_rank"] = (
        per_seg["segment_rank"].astype(int) if "segment_rank" in per_seg else np.arange(1, len(per_seg) + 1)
    )
    table["size"] = per_seg["size"].astype(int)
    table["share"] = table["size"] / total
    if "value" in per_seg:
        value = per_seg["value"].astype(float)
        total_value = value.sum()
        table["value"] = value
        table["revenue_share"] = value / total_value if total_value > 0 else np.nan
    else:
        table["value"] = np.nan
        table["revenue_share"] = np.nan
    index = pd.Index(table["segment"], name="segment")
    means = settled(pd.DataFrame({f: per_seg[f"m{i}"].astype(float).to_numpy() for i, f in enumerate(numeric)},
                                 index=index))
    medians = pd.DataFrame({f: per_seg[f"q{i}"].astype(float).to_numpy() for i, f in enumerate(numeric)}, index=index)
    return table, means, medians


def _makeup(joined: ibis.Table, categorical: list[str], table: pd.DataFrame) -> pd.DataFrame:
    """Per segment, categorical column and level: count, share in the segment and share in
    the base; the counts of every column in one engine query (the columns unpivoted to
    ``(segment, column, level)`` rows, one scan, then counted), each column's levels beyond
    :data:`MAX_MAKEUP_LEVELS` folded into ``(other)``."""
    cols = ["segment", "column", "level", "count", "share", "base_share"]
    if not categorical:
        return pd.DataFrame(columns=cols)
    names = {f"_c{i}": col for i, col in enumerate(categorical)}
    levels = joined.select("segment", **{k: joined[col].cast("string").fill_null("(missing)")
                                          for k, col in names.items()})
    long = levels.pivot_longer(list(names), names_to="_column", values_to="_level")
    everything = long.group_by(["segment", "_column", "_level"]).aggregate(
        count=ibis._.count()).to_pandas()
    everything["_column"] = everything["_column"].map(names)
    parts = []
    for col in categorical:
        counts = everything[everything["_column"] == col].drop(columns="_column")
        # the engine's row order is arbitrary: a fixed one, so that ties sort alike
        counts = counts.rename(columns={"_level": "level"}).sort_values(["segment", "level"])
        counts = counts.reset_index(drop=True)
        base = counts.groupby("level")["count"].sum().sort_values(ascending=False, kind="stable")
        if len(base) > MAX_MAKEUP_LEVELS:
            kept = set(base.index[: MAX_MAKEUP_LEVELS - 1])
            counts["level"] = counts["level"].where(counts["level"].isin(kept), "(other)")
            counts = counts.groupby(["segment", "level"], as_index=False)["count"].sum()
            base = counts.groupby("level")["count"].sum()
        seg_size = counts.groupby("segment")["count"].transform("sum")
        counts["share"] = counts["count"] / seg_size
        counts["base_share"] = counts["level"].map(base / base.sum())
        counts["column"] = col
        parts.append(counts)
    out = pd.concat(parts, ignore_index=True)[cols]
    order = {s: i for i, s in enumerate(table["segment"])}
    out["segment"] = out["segment"].astype(str)
    out["_order"] = out["segment"].map(order)
    out = out.sort_values(["_order", "column", "share"], ascending=[True, True, False], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _top_features(row: pd.Series) -> str:
    d = row.dropna()
    d = d.reindex(d.abs().sort_values(ascending=False).index)[:TOP_FEATURES]
    return ", ".join(f"{f} {v:+.2f} sd" for f, v in d.items() if abs(v) >= NAME_THRESHOLD / 2)
