"""Exact medians of every profiled feature per segment of every scheme, from one sort per
feature (numpy) instead of a grouped median per (scheme, segment) in the engine.

The definition is DuckDB's ``median`` (``quantile_cont(0.5)``) over the customers with a
value: of ``n`` sorted values ``x``, ``x[(n - 1) / 2]`` for odd ``n``, else
``lo + (hi - lo) * 0.5`` of the two middle values; null (NaN) when no customer of the group
has a value. For each feature the values of the profiled customers are sorted once; each
scheme then orders its segment codes stably along that order (a radix sort of small
integers), so that each segment's values come out sorted and its middle values are read at
the segment's offsets. The base (every profiled customer, or every customer assigned in a
scheme that covers fewer) reads the middle of the sorted values directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

#: Feature columns fetched from the engine at a time (memory: rows x this x 8 bytes).
_BATCH = 8


def _middle(sorted_values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Medians of the sorted runs ``sorted_values[starts[g]:starts[g] + counts[g]]``."""
    last = max(len(sorted_values) - 1, 0)
    if len(sorted_values) == 0:
        return np.full(len(counts), np.nan)
    lo = sorted_values[np.minimum(starts + np.maximum(counts - 1, 0) // 2, last)]
    hi = sorted_values[np.minimum(starts + counts // 2, last)]
    return np.where(counts > 0, lo + (hi - lo) * 0.5, np.nan)


def group_medians(values: np.ndarray, codes: Sequence[np.ndarray], groups: Sequence[int],
                  bases: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
    """For one feature: per code array ``codes[s]`` (int, ``-1``: in no group, else ``0 ..
    groups[s] - 1``) the median of ``values`` (float64, NaN: no value) of each group, and per
    boolean mask of ``bases`` the median of the values it selects."""
    order = np.argsort(values)  # ties in any order: equal values
    have = int(np.count_nonzero(~np.isnan(values)))
    idx = order[:have]  # NaN sorts last
    sv = values[idx]
    out = []
    for c, n in zip(codes, groups, strict=True):
        cs = c[idx]
        grouped = sv[np.argsort(cs, kind="stable")]
        counts = np.bincount(cs + 1, minlength=n + 1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        out.append(_middle(grouped, starts[1:], counts[1:]))
    base = []
    for mask in bases:
        picked = sv[mask[idx]]
        base.append(float(_middle(picked, np.array([0]), np.array([len(picked)]))[0]))
    return out, base


def profile_stats(profiled: ibis.Table, assignments: ibis.Table, numeric: Sequence[str],
                  value_col: str | None) -> tuple[pd.DataFrame, dict[str | None, pd.Series]]:
    """The grouped statistics of :func:`segflow.summaries._profiles.rule_profiles`, from one
    fetch of the profiled customers' features (numpy) instead of grouped queries.

    ``profiled``: the features of the profiled customers (one row per ``customer_id``: those
    assigned in any scheme); ``assignments``: ``scheme, customer_id, segment, segment_rank``
    (materialised, ranks filled). Returns the per-segment frame (``scheme, segment, size,
    segment_rank`` (smallest), ``value`` (sum of ``value_col``, when given), ``m{i}`` (mean)
    and ``q{i}`` (median) of every feature of ``numeric`` over the customers with a value)
    and the bases (``n, m{i}, s{i}`` (population std), ``q{i}``): key None over every
    profiled customer, a scheme's name over its assigned customers for every scheme that
    covers fewer. Means and standard deviations are summed by numpy (the last digits may
    differ from the engine's sums); medians are exact (module docstring)."""
    segs = assignments.select("scheme", "segment").distinct().to_pandas()
    segs = segs.sort_values(["scheme", "segment"], ignore_index=True)
    schemes = list(dict.fromkeys(segs["scheme"]))
    segs["code"] = segs.groupby("scheme").cumcount()
    names = ibis.memtable(pa.Table.from_pandas(
        segs.rename(columns={"scheme": "c_scheme", "segment": "c_segment"}), preserve_index=False))
    a = assignments.join(names, (assignments.scheme == names.c_scheme) & (assignments.segment == names.c_segment))
    wide = a.group_by(w_cid=a.customer_id).aggregate(
        **{f"c{i}": a.code.max(where=a.scheme == s) for i, s in enumerate(schemes)},
        **{f"r{i}": a.segment_rank.min(where=a.scheme == s) for i, s in enumerate(schemes)})
    m = profiled.left_join(wide, profiled.customer_id == wide.w_cid)
    xs = list(numeric) + ([value_col] if value_col is not None and value_col not in numeric else [])
    m = m.select(**{f"c{i}": m[f"c{i}"].fill_null(-1) for i in range(len(schemes))},
                 **{f"r{i}": m[f"r{i}"] for i in range(len(schemes))},
                 **{f"x{j}": m[f].cast("float64") for j, f in enumerate(xs)}).cache()
    try:
        # a plain scan of a materialised table keeps its row order: columns fetched apart align
        head = m.select(*[f"{p}{i}" for i in range(len(schemes)) for p in ("c", "r")]).to_pyarrow()
        n_rows = head.num_rows
        # 16-bit codes: numpy's stable sort of them is a radix sort
        codes = [head[f"c{i}"].to_numpy().astype(np.int16) for i in range(len(schemes))]
        groups = [int((segs["scheme"] == s).sum()) for s in schemes]
        sizes = [np.bincount(c[c >= 0], minlength=g) for c, g in zip(codes, groups, strict=True)]
        ranks = []
        for i, c in enumerate(codes):
            r = pd.Series(head[f"r{i}"].to_numpy(zero_copy_only=False)[c >= 0]).groupby(c[c >= 0]).min()
            ranks.append(r.reindex(range(groups[i])).to_numpy())
        own = [s for i, s in enumerate(schemes) if int(sizes[i].sum()) != n_rows]
        masks = [np.ones(n_rows, dtype=bool)] + [codes[schemes.index(s)] >= 0 for s in own]
        seg_m = [np.full((g, len(xs)), np.nan) for g in groups]
        seg_sum = [np.full((g, len(xs)), np.nan) for g in groups]
        seg_q = [np.full((g, len(xs)), np.nan) for g in groups]
        base = np.full((len(masks), 3, len(xs)), np.nan)
        for lo in range(0, len(xs), _BATCH):
            cols = [f"x{j}" for j in range(lo, min(lo + _BATCH, len(xs)))]
            batch = m.select(*cols).to_pyarrow()
            for j, col in enumerate(cols, start=lo):
                values = batch[col].to_numpy(zero_copy_only=False).astype(np.float64)
                per, medians = group_medians(values, codes, groups, masks)
                valid = ~np.isnan(values)
                for i, c in enumerate(codes):
                    k = valid & (c >= 0)
                    count = np.bincount(c[k], minlength=groups[i])
                    total = np.bincount(c[k], weights=values[k], minlength=groups[i])
                    with np.errstate(invalid="ignore", divide="ignore"):
                        seg_m[i][:, j] = np.where(count > 0, total / count, np.nan)
                    seg_sum[i][:, j] = np.where(count > 0, total, np.nan)
                    seg_q[i][: len(per[i]), j] = per[i]
                for b, mask in enumerate(masks):
                    v = values[mask & valid]
                    if len(v):
                        base[b, :, j] = [v.mean(), v.std(), medians[b]]
    finally:
        m.release()
    rows = []
    vi = xs.index(value_col) if value_col is not None else None
    for i, s in enumerate(schemes):
        part = segs[segs["scheme"] == s]
        for r in part.itertuples():
            if sizes[i][r.code] == 0:
                continue  # no profiled customer: not a row of the grouped join
            row = {"scheme": s, "segment": r.segment, "size": int(sizes[i][r.code]),
                   "segment_rank": int(ranks[i][r.code])}
            if vi is not None:
                row["value"] = seg_sum[i][r.code, vi]
            row.update({f"m{j}": seg_m[i][r.code, j] for j in range(len(numeric))})
            row.update({f"q{j}": seg_q[i][r.code, j] for j in range(len(numeric))})
            rows.append(row)
    bases: dict[str | None, pd.Series] = {}
    for b, key in enumerate([None, *own]):
        stats = {"n": int(np.count_nonzero(masks[b]))}
        for j in range(len(numeric)):
            stats[f"m{j}"], stats[f"s{j}"], stats[f"q{j}"] = base[b, :, j]
        bases[key] = pd.Series(stats)
    return pd.DataFrame(rows), bases
