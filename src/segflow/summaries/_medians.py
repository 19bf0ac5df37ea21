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
    order = np.argsort(values, kind="stable")
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


def profile_medians(profiled: ibis.Table, assignments: ibis.Table, numeric: Sequence[str],
                    own: Sequence[str]) -> tuple[dict[tuple[str, str], np.ndarray], dict[str | None, np.ndarray]]:
    """The medians of ``numeric`` (cast to float64) of ``profiled`` (the features of the
    profiled customers, one row per ``customer_id``) per (scheme, segment) of
    ``assignments`` (``scheme, customer_id, segment``, materialised), and of the base: key
    None over every profiled customer, key ``s`` over the customers assigned in ``s`` (for
    the schemes of ``own``). Arrays hold one median per feature, in the order of ``numeric``."""
    segs = assignments.select("scheme", "segment").distinct().to_pandas()
    segs = segs.sort_values(["scheme", "segment"], ignore_index=True)
    schemes = list(dict.fromkeys(segs["scheme"]))
    segs["code"] = segs.groupby("scheme").cumcount()
    names = ibis.memtable(pa.Table.from_pandas(
        segs.rename(columns={"scheme": "c_scheme", "segment": "c_segment"}), preserve_index=False))
    a = assignments.join(names, (assignments.scheme == names.c_scheme) & (assignments.segment == names.c_segment))
    wide = a.group_by(w_cid=a.customer_id).aggregate(
        **{f"c{i}": a.code.max(where=a.scheme == s) for i, s in enumerate(schemes)})
    m = profiled.left_join(wide, profiled.customer_id == wide.w_cid)
    m = m.select(**{f"c{i}": m[f"c{i}"].fill_null(-1) for i in range(len(schemes))},
                 **{f"x{j}": m[f].cast("float64") for j, f in enumerate(numeric)}).cache()
    try:
        # a plain scan of a materialised table keeps its row order: columns fetched apart align
        head = m.select(*[f"c{i}" for i in range(len(schemes))]).to_pyarrow()
        codes = [head[f"c{i}"].to_numpy().astype(np.int32) for i in range(len(schemes))]
        groups = [int((segs["scheme"] == s).sum()) for s in schemes]
        masks = [np.ones(len(codes[0]) if codes else head.num_rows, dtype=bool)]
        masks += [codes[schemes.index(s)] >= 0 for s in own]
        seg_q = np.full((len(schemes), max(groups, default=0), len(numeric)), np.nan)
        base_q = np.full((len(masks), len(numeric)), np.nan)
        for lo in range(0, len(numeric), _BATCH):
            cols = [f"x{j}" for j in range(lo, min(lo + _BATCH, len(numeric)))]
            batch = m.select(*cols).to_pyarrow()
            for j, col in enumerate(cols, start=lo):
                values = batch[col].to_numpy(zero_copy_only=False).astype(np.float64)
                per, base = group_medians(values, codes, groups, masks)
                for i, q in enumerate(per):
                    seg_q[i, : len(q), j] = q
                base_q[:, j] = base
    finally:
        m.release()
    by_seg = {(str(r.scheme), str(r.segment)): seg_q[schemes.index(r.scheme), r.code]
              for r in segs.itertuples()}
    by_base: dict[str | None, np.ndarray] = {None: base_q[0]}
    by_base.update({s: base_q[k + 1] for k, s in enumerate(own)})
    return by_seg, by_base

