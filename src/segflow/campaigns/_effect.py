"""Experiment read-out: per arm and per segment, rates or means, lift vs control, intervals,
p-values with a multiple-comparison correction, minimum detectable effects, balance checks.

The counts, sums and variances per (segment, arm) are computed in the engine with one Ibis
``group_by`` per ``by`` column (unioned into one query); the statistics run on that small
aggregate with NumPy/SciPy (:mod:`segflow.campaigns._stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import ibis
import numpy as np
import pandas as pd

from segflow._result import TableResult
from segflow.campaigns._arms import arm_changes, clean_arm, with_arms
from segflow.campaigns._customers import refuse_repeated_customers
from segflow.errors import InputError
from segflow.exports._pii import is_customer_key, is_personal

if TYPE_CHECKING:
    import plotly.graph_objects as go

ALL = "(all)"
MISSING = "(missing)"

#: Columns of :meth:`EffectReport.to_pandas`, in order.
EFFECT_COLUMNS = [
    "by", "segment", "outcome", "kind", "arm", "is_control", "n", "n_missing", "value",
    "value_low", "value_high", "n_control", "value_control", "lift_abs", "lift_abs_low",
    "lift_abs_high", "lift_rel", "lift_rel_low", "lift_rel_high", "test", "p_value",
    "p_adjusted", "significant", "mde_abs", "balance_p", "unbalanced", "note",
]  # fmt: skip


class EffectReport(TableResult):
    """The read-out of one experiment: one row per (by, segment, outcome, arm).

    Attributes
    ----------
    table : pandas.DataFrame
        Columns listed in :data:`EFFECT_COLUMNS`. ``by`` is ``"(all)"`` for the whole
        experiment, otherwise the name of the ``by`` column and ``segment`` its value.
        ``kind`` is ``"rate"`` (0/1 outcome; ``value`` is the response rate) or ``"mean"``
        (``value`` is the mean, in the outcome's units). ``lift_abs`` is treated minus
        control (percentage points / 100 for rates), ``lift_rel`` treated / control - 1.
    control, arms, outcomes, by, level, correction
        The settings of the read-out.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        *,
        control: str,
        arms: list[str],
        outcomes: list[str],
        by: list[str],
        level: float,
        correction: str,
    ) -> None:
        self.table = table
        self.control = control
        self.arms = arms
        self.outcomes = outcomes
        self.by = by
        self.level = level
        self.correction = correction

    def to_pandas(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(
            control=self.control,
            arms=self.arms,
            outcomes=self.outcomes,
            by=self.by,
            level=self.level,
            correction=self.correction,
        )
        return out

    def ranked(self, outcome: str | None = None, *, arm: str | None = None) -> pd.DataFrame:
        """Segments ranked by absolute lift (largest first) for one outcome and treated arm.

        Segments of every ``by`` column are pooled in one ranking; the ``(all)`` row is left
        out. Rows without a lift (empty arms) go last.
        """
        outcome = outcome or self.outcomes[0]
        treated = [a for a in self.arms if a != self.control]
        arm = arm or (treated[0] if treated else self.control)
        t = self.table
        t = t[(t.outcome == outcome) & (t.arm == arm) & (t.by != ALL)]
        return t.sort_values(["lift_abs", "by", "segment"], ascending=[False, True, True],
                             na_position="last").reset_index(drop=True)

    def figure(self, outcome: str | None = None) -> go.Figure:
        """Forest plot of the absolute lift with its interval per segment and arm."""
        from segflow.viz._campaigns import lift_forest

        return lift_forest(self, outcome or self.outcomes[0])

    def __repr__(self) -> str:
        n = int(self.table.loc[self.table.by == ALL].groupby("arm")["n"].max().sum())
        return (
            f"EffectReport(arms={self.arms}, control={self.control!r}, outcomes={self.outcomes},"
            f" by={self.by}, customers={n}, level={self.level}, correction={self.correction!r})"
        )


def campaign_effect(
    responses: pd.DataFrame | ibis.Table,
    *,
    arm_col: str,
    control: str,
    outcomes: Sequence[str],
    by: Sequence[str] = (),
    level: float = 0.95,
    correction: Literal["holm", "bh", "none"] = "holm",
    power: float = 0.8,
    min_n: int = 30,
    balance_alpha: float = 0.001,
    expected_split: Mapping[str, float] | None = None,
    expected_segments: Mapping[str, Sequence[str]] | None = None,
    id_col: str | None = None,
    source: str | None = None,
) -> EffectReport:
    """Read out an experiment: per arm and per segment, effect of each treated arm vs control.

    Parameters
    ----------
    responses : pandas.DataFrame or ibis.Table
        One row per customer: the arm, the outcomes and any attributes. With an id column
        (``id_col``), a table without rows, a row without an id or an id on several rows is
        an :class:`InputError` naming the first rows and the ids (a repeated customer counted
        twice).
    arm_col : str
        Column holding the arm, compared as text after trimming (``"treatment "`` is
        ``treatment``). Rows without an arm (missing or empty) are left out, counted in a
        warning; two arm values that differ only in case are an InputError.
    control : str
        The arm value of the control group (trimmed, compared exactly).
    outcomes : sequence of str
        Numeric or boolean outcome columns. A column whose non-missing values are all 0 or 1
        is read as a response *rate*; any other as a *mean* (e.g. revenue in currency units).
        Missing values are left out of that outcome (counted in ``n_missing``).
    by : sequence of str, default=()
        Columns to break the effect down by (segment of a scheme, channel, region...).
        Missing values form the segment ``"(missing)"``. A personal column (``email``,
        ``phone``, ``name``, ``postcode``...: :func:`segflow.exports.is_personal`) is an
        :class:`InputError` (:func:`refuse_personal_breakdown`).
    level : float, default=0.95
        Confidence level of every interval.
    correction : {"holm", "bh", "none"}, default="holm"
        Multiple-comparison correction applied within each family = (``by`` column,
        outcome): all segments x treated arms of that column. The ``(all)`` rows form their
        own family (over treated arms).
    power : float, default=0.8
        Power of the minimum detectable effect ``mde_abs``.
    min_n : int, default=30
        Segments with fewer customers than this in some arm are noted as tiny.
    balance_alpha : float, default=0.001
        A segment is flagged ``unbalanced`` when the test of its arm split has p-value below
        this (the sample-ratio-mismatch rule). By default the test compares the segment's
        split with the split of all other customers (chi-square test of independence,
        Fisher's exact test for small two-arm tables); with ``expected_split`` it compares
        with the designed shares (exact binomial test for two arms, chi-square goodness of
        fit for more).
    expected_split : mapping, optional
        The designed arm shares (e.g. ``{"treatment": 0.9, "control": 0.1}``). When given,
        the whole experiment (the ``(all)`` rows) and every segment are checked against it.
    expected_segments : mapping, optional
        ``{by column: [segment values]}`` that should appear; absent ones are reported with
        ``n = 0`` and the note ``empty``.
    id_col : str, optional
        The column identifying customers, checked one row per customer. Default:
        ``customer_id``, else the first column named as a customer key (``CustomerID``,
        ``client_id``, ``user_id``, ``id``...); responses without one are not checked.
    source : str, optional
        A name for ``responses`` used in error messages (e.g. the file name).

    Returns
    -------
    EffectReport

    Notes
    -----
    Rates: Wilson interval per arm, Newcombe hybrid score interval for the difference,
    pooled two-proportion z-test, or Fisher's exact test when an expected 2x2 cell count
    is below 5. Means: Welch t interval and test (unequal variances, Welch-Satterthwaite
    degrees of freedom); the normal approximation is good for skewed revenue once an arm
    has a few hundred customers. Relative lift: delta-method interval on the log ratio.
    """
    refuse_repeated_customers(responses, id_col, source)
    return read_out(_as_table(responses, id_col), arm_col=arm_col, control=control, outcomes=outcomes,
                    by=by, level=level, correction=correction, power=power, min_n=min_n,
                    balance_alpha=balance_alpha, expected_split=expected_split,
                    expected_segments=expected_segments, source=source)


def read_out(
    table: ibis.Table,
    *,
    arm_col: str,
    control: str,
    outcomes: Sequence[str],
    by: Sequence[str] = (),
    level: float = 0.95,
    correction: Literal["holm", "bh", "none"] = "holm",
    power: float = 0.8,
    min_n: int = 30,
    balance_alpha: float = 0.001,
    expected_split: Mapping[str, float] | None = None,
    expected_segments: Mapping[str, Sequence[str]] | None = None,
    source: str | None = None,
) -> EffectReport:
    """The guts of :func:`campaign_effect`, on responses known to hold one row per customer
    (the store's :func:`~segflow.campaigns.exposure_responses`, grouped by customer): no id
    check, which would run their query once more."""
    by = list(by)
    outcomes = list(outcomes)
    _check_columns(table, arm_col, outcomes, by, source)
    if not outcomes:
        raise InputError("name at least one outcome column", file=source)
    control = clean_arm(control)
    # one query when the arm values are clean (the store's read-outs); a second on the
    # cleaned arms when some need trimming or are missing (customer files)
    agg, binary = _aggregate(table, arm_col, outcomes, by)
    overall = agg[agg.by == ALL]
    counts: dict[str | None, int] = {}
    for arm, n in zip(overall["arm"], overall["n"], strict=True):
        key = None if arm is None or arm != arm else str(arm)  # NULL: None or NaN
        counts[key] = counts.get(key, 0) + int(n)
    mapping = arm_changes(counts, column=arm_col, source=source)
    if mapping is not None:
        agg, binary = _aggregate(with_arms(table, arm_col, mapping), arm_col, outcomes, by)
    arms = sorted(agg["arm"].unique().tolist(), key=lambda a: (a != control, a))
    if control not in arms:
        raise InputError(
            f"no customer has the control arm {control!r}; arms found: {arms}",
            file=source,
            column=arm_col,
        )
    if len(arms) < 2:
        raise InputError(f"only the control arm {control!r} is present", file=source, column=arm_col)
    expected_split = _check_split(expected_split, arms, source, arm_col)
    agg = _complete(agg, arms, by, expected_segments)
    result = _statistics(agg, outcomes, binary, control, level, power, min_n)
    result = _correct(result, correction, level)
    result = _balance(result, agg, arms, control, balance_alpha, expected_split)
    order = {v: i for i, v in enumerate([ALL, *by])}
    result["_o"] = result["by"].map(order)
    result["_a"] = result["arm"].map({a: i for i, a in enumerate(arms)})
    result["_y"] = result["outcome"].map({o: i for i, o in enumerate(outcomes)})
    result = result.sort_values(["_o", "segment", "_y", "_a"]).drop(columns=["_o", "_a", "_y"])
    return EffectReport(
        result[EFFECT_COLUMNS].reset_index(drop=True),
        control=control,
        arms=arms,
        outcomes=outcomes,
        by=by,
        level=level,
        correction=correction,
    )


# -- engine side -------------------------------------------------------------------------


def _as_table(responses: pd.DataFrame | ibis.Table, id_col: str | None = None) -> ibis.Table:
    from segflow._frames import frame_table

    if isinstance(responses, ibis.Table):
        return responses
    if isinstance(responses, pd.DataFrame):  # (ids beyond 64 bits: text, as in the store)
        return frame_table(responses, {"customer_id", id_col or "customer_id"})
    raise TypeError(f"responses must be a pandas DataFrame or an ibis Table, not {type(responses)}")


def _check_columns(
    table: ibis.Table, arm_col: str, outcomes: list[str], by: list[str], source: str | None
) -> None:
    schema = table.schema()
    for col in [arm_col, *outcomes, *by]:
        if col not in schema:
            raise InputError(
                f"column not found; columns are: {', '.join(schema.names)}", file=source, column=col
            )
    refuse_personal_breakdown(by, source)
    for col in outcomes:
        dtype = schema[col]
        if not (dtype.is_numeric() or dtype.is_boolean()):
            where: dict[str, object] = {}
            if dtype.is_string():  # a file's column of numbers with a text cell ('NA', '12 EUR')
                numbered = table.mutate(_row=ibis.row_number() + 1)
                bad = numbered.filter(numbered[col].notnull()
                                      & numbered[col].strip().try_cast("float64").isnull())
                first = bad.order_by("_row").select("_row", value=bad[col]).limit(1).execute()
                if len(first):
                    where = {"row": int(first["_row"].iloc[0])}
                    dtype = f"text ({first['value'].iloc[0]!r}; empty the cells without a value)"
            raise InputError(
                f"outcome must be numeric (0/1 for a response, amounts for revenue), not {dtype}",
                file=source,
                column=col,
                **where,
            )


def refuse_personal_breakdown(by: Sequence[str], source: str | None = None) -> None:
    """Raise :class:`InputError` naming the first column of ``by`` that holds personal data
    (:func:`segflow.exports.is_personal`: ``email``, ``E-Mail``, ``phone``, ``name``,
    ``postcode``...). A breakdown by it is one group per person: its labels would print the
    values in clear and each group's lift would be one customer's outcome. Hashing the labels
    would hide the values but not the individual outcomes, so it is refused, not hashed.
    A column identifying customers (``customer_id``, ``user_id``...:
    :func:`segflow.exports._pii.is_customer_key`) is refused alike: one group per person."""
    for col in by:
        what = ("holds personal data" if is_personal(col)
                else "identifies customers" if is_customer_key(col) else None)
        if what:
            raise InputError(f"cannot break the effect down by {col!r}: it {what} (one "
                             "group per person); break it down by a segment or a coarser column "
                             "such as a region", file=source, column=col)


def _aggregate(
    table: ibis.Table, arm_col: str, outcomes: list[str], by: list[str]
) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Counts, means and sample variances per (by, segment, arm) — one engine query —
    and which outcomes are 0/1."""
    ys = {f"y{i}": table[o].cast("float64") for i, o in enumerate(outcomes)}
    base = table.select(arm=table[arm_col].cast("string"), **ys,
                        **{f"b{i}": table[c].cast("string").fill_null(MISSING)
                           for i, c in enumerate(by)})
    metrics: dict[str, Any] = {"n": base.count()}
    for key in ys:
        col = base[key]
        metrics[f"{key}_n"] = col.count()
        metrics[f"{key}_mean"] = col.mean()
        metrics[f"{key}_var"] = col.var(how="sample")
        metrics[f"{key}_odd"] = (col.notnull() & (col != 0.0) & (col != 1.0)).cast("int64").sum()
    parts = [base.group_by("arm").agg(**metrics).mutate(by=ibis.literal(ALL),
                                                         segment=ibis.literal(ALL))]
    for i, col in enumerate(by):
        part = base.group_by(["arm", f"b{i}"]).agg(**metrics)
        parts.append(part.rename(segment=f"b{i}").mutate(by=ibis.literal(col)))
    cols = ["by", "segment", "arm", *metrics]
    query = parts[0].select(cols)
    for part in parts[1:]:
        query = query.union(part.select(cols))
    agg = query.to_pandas()
    for key in ys:  # parallel float sums differ in their last bits from run to run
        for stat in ("mean", "var"):
            agg[f"{key}_{stat}"] = _significant(agg[f"{key}_{stat}"])
    overall = agg[agg.by == ALL]
    binary = {o: int(overall[f"y{i}_odd"].fillna(0).sum()) == 0 for i, o in enumerate(outcomes)}
    rename = {}
    for i, o in enumerate(outcomes):
        for stat in ("n", "mean", "var"):
            rename[f"y{i}_{stat}"] = f"{o}\x00{stat}"
    agg = agg.drop(columns=[f"y{i}_odd" for i in range(len(outcomes))]).rename(columns=rename)
    return agg, binary


def _significant(values: pd.Series, digits: int = 12) -> pd.Series:
    """``values`` rounded to ``digits`` significant digits (NaN kept).

    The engine sums doubles in parallel, so a mean or variance may differ in its last bits
    between two runs on the same rows; 12 significant digits (far above any reported
    precision) make equal inputs give equal read-outs. One value per (segment, arm): small.
    """
    x = values.to_numpy(dtype="float64")
    out = np.array([float(f"{v:.{digits}g}") if np.isfinite(v) else v for v in x])
    return pd.Series(out, index=values.index, dtype="float64")


def _complete(
    agg: pd.DataFrame,
    arms: list[str],
    by: list[str],
    expected_segments: Mapping[str, Sequence[str]] | None,
) -> pd.DataFrame:
    """Add rows with n = 0 for every (segment, arm) pair that has no customers."""
    keys = []
    for b in [ALL, *by]:
        segs = set(agg.loc[agg.by == b, "segment"])
        segs |= {str(s) for s in (expected_segments or {}).get(b, [])}
        keys += [(b, s, a) for s in sorted(segs) for a in arms]
    index = pd.MultiIndex.from_tuples(keys, names=["by", "segment", "arm"])
    full = agg.set_index(["by", "segment", "arm"]).reindex(index)
    full["n"] = full["n"].fillna(0).astype("int64")
    for c in full.columns:
        if c.endswith("\x00n"):
            full[c] = full[c].fillna(0).astype("int64")
    return full.reset_index()


# -- statistics on the aggregate ---------------------------------------------------------


def _statistics(
    agg: pd.DataFrame,
    outcomes: list[str],
    binary: dict[str, bool],
    control: str,
    level: float,
    power: float,
    min_n: int,
) -> pd.DataFrame:
    from segflow.campaigns import _stats  # SciPy: imported on first use

    frames = []
    for o in outcomes:
        f = agg[["by", "segment", "arm", "n"]].copy()
        f["n_rows"] = f["n"]
        f["outcome"] = o
        f["n"] = agg[f"{o}\x00n"].to_numpy()
        f["n_missing"] = f["n_rows"] - f["n"]
        f["value"] = agg[f"{o}\x00mean"].to_numpy(dtype=float)
        f["var"] = agg[f"{o}\x00var"].to_numpy(dtype=float)
        f["kind"] = "rate" if binary[o] else "mean"
        frames.append(f)
    long = pd.concat(frames, ignore_index=True)
    ctrl = long[long.arm == control][["by", "segment", "outcome", "n", "value", "var", "n_rows"]]
    ctrl = ctrl.rename(columns={"n": "n_control", "value": "value_control", "var": "var_control",
                                "n_rows": "rows_control"})
    t = long.merge(ctrl, on=["by", "segment", "outcome"], how="left")
    t["is_control"] = t["arm"] == control
    rate = (t["kind"] == "rate").to_numpy()
    _rate_stats(t, rate, level)
    _mean_stats(t, ~rate, level)
    # relative lift (delta method on the log ratio); rate variance is p(1-p)
    v1 = np.where(rate, t["value"] * (1 - t["value"]), t["var"])
    v0 = np.where(rate, t["value_control"] * (1 - t["value_control"]), t["var_control"])
    t["lift_rel"], t["lift_rel_low"], t["lift_rel_high"] = _stats.relative_lift_interval(
        t["value"], v1, t["n"], t["value_control"], v0, t["n_control"], level
    )
    t["mde_abs"] = _stats.minimum_detectable_effect(
        np.sqrt(v0), t["n"], t["n_control"], level=level, power=power
    )
    control_rows = t["is_control"].to_numpy()
    for col in ["lift_abs", "lift_abs_low", "lift_abs_high", "lift_rel", "lift_rel_low",
                "lift_rel_high", "p_value", "mde_abs"]:
        t.loc[control_rows, col] = np.nan
    t.loc[control_rows, "test"] = ""
    t["note"] = _notes(t, min_n)
    return t


def _rate_stats(t: pd.DataFrame, rate: np.ndarray, level: float) -> None:
    from segflow.campaigns import _stats  # SciPy: imported on first use

    n1, n0 = t["n"].to_numpy(float), t["n_control"].to_numpy(float)
    x1 = np.round(t["value"].fillna(0).to_numpy() * n1)
    x0 = np.round(t["value_control"].fillna(0).to_numpy() * n0)
    low, high = _stats.wilson_interval(x1, n1, level)
    dlow, dhigh = _stats.newcombe_interval(x1, n1, x0, n0, level)
    pz = _stats.two_proportion_ztest(x1, n1, x0, n0)
    fisher = _stats.fisher_needed(x1, n1, x0, n0) & rate
    pf = np.full(len(t), np.nan)
    if fisher.any():
        pf[fisher] = _stats.fisher_pvalues(x1[fisher], n1[fisher], x0[fisher], n0[fisher])
    _put(t, rate, value_low=low, value_high=high, lift_abs_low=dlow, lift_abs_high=dhigh,
         p_value=np.where(fisher, pf, pz), test=np.where(fisher, "fisher_exact", "z_test"))
    with np.errstate(invalid="ignore", divide="ignore"):
        _put(t, rate, lift_abs=x1 / n1 - x0 / n0)


def _mean_stats(t: pd.DataFrame, mean: np.ndarray, level: float) -> None:
    from scipy import stats

    from segflow.campaigns import _stats  # SciPy: imported on first use

    n1 = t["n"].to_numpy(float)
    m1, v1 = t["value"].to_numpy(float), t["var"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + level / 2, n1 - 1) * np.sqrt(v1 / n1)
    low, high, p = _stats.welch_test(m1, v1, n1, t["value_control"], t["var_control"],
                                     t["n_control"], level)
    _put(t, mean, value_low=m1 - half, value_high=m1 + half, lift_abs=m1 - t["value_control"],
         lift_abs_low=low, lift_abs_high=high, p_value=p, test="welch_t")


def _put(t: pd.DataFrame, mask: np.ndarray, **cols: Any) -> None:
    for name, values in cols.items():
        if name not in t.columns:
            t[name] = "" if name == "test" else np.nan
        values = np.broadcast_to(np.asarray(values), (len(t),))
        t.loc[mask, name] = values[mask]


def _notes(t: pd.DataFrame, min_n: int) -> pd.Series:
    notes = np.full(len(t), "", dtype=object)

    def add(mask: np.ndarray, text: str) -> None:
        notes[mask] = np.where(notes[mask] == "", text, notes[mask] + "; " + text)

    n, n0 = t["n"].to_numpy(), t["n_control"].to_numpy()
    add((t["n_rows"] == 0).to_numpy(), "empty: no customers in this arm")
    add(((t["n_rows"] > 0) & (n == 0)).to_numpy(), "no non-missing outcome values")
    add(~t["is_control"].to_numpy() & (t["rows_control"] == 0).to_numpy(),
        "no control customers: lift undefined")
    tiny = ((n > 0) & (n < min_n)) | (~t["is_control"].to_numpy() & (n0 > 0) & (n0 < min_n))
    add(tiny, f"tiny: fewer than {min_n} customers in an arm")
    miss = t["n_missing"].to_numpy()
    add(miss > 0, "missing outcome values left out")
    return pd.Series(notes, index=t.index)


def _correct(t: pd.DataFrame, correction: str, level: float) -> pd.DataFrame:
    from segflow.campaigns import _stats  # SciPy: imported on first use

    t["p_adjusted"] = np.nan
    for _, idx in t.groupby(["by", "outcome"]).groups.items():
        t.loc[idx, "p_adjusted"] = _stats.adjust_pvalues(t.loc[idx, "p_value"].to_numpy(float),
                                                         correction)  # type: ignore[arg-type]
    t["significant"] = t["p_adjusted"] < (1.0 - level)
    return t


def _check_split(split: Mapping[str, float] | None, arms: list[str], source: str | None,
                 arm_col: str) -> dict[str, float] | None:
    """The designed shares checked against the arms of the data: every arm named once (its
    name trimmed as the arm values are), each share in (0, 1), summing to 1 (within 1e-6).
    An arm named wrongly got share 0 and a test against the wrong design."""
    if split is None:
        return None
    shares: dict[str, float] = {}
    for a, v in split.items():
        if clean_arm(a) in shares:  # 'treatment' and 'treatment ' are one arm
            raise InputError(f"the designed split gives the arm {clean_arm(a)!r} twice; give "
                             "each arm once", file=source, column=arm_col)
        shares[clean_arm(a)] = float(v)
    unknown, missing = sorted(set(shares) - set(arms)), sorted(set(arms) - set(shares))
    if unknown or missing:
        said = "; ".join(part for part in (
            f"not arms of the data: {', '.join(map(repr, unknown))}" if unknown else "",
            f"without a share: {', '.join(map(repr, missing))}" if missing else "") if part)
        raise InputError(f"the designed split must give every arm a share ({said}); arms found: "
                         f"{', '.join(map(repr, arms))}", file=source, column=arm_col)
    if not all(0 < v < 1 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
        given = ", ".join(f"{a}={v:g}" for a, v in shares.items())
        raise InputError(f"the designed split's shares must each be between 0 and 1 and sum to 1, "
                         f"got {given}", file=source, column=arm_col)
    return shares


def _balance(
    t: pd.DataFrame,
    agg: pd.DataFrame,
    arms: list[str],
    control: str,
    alpha: float,
    expected_split: Mapping[str, float] | None,
) -> pd.DataFrame:
    from segflow.campaigns import _stats  # SciPy: imported on first use

    counts = agg.pivot_table(index=["by", "segment"], columns="arm", values="n",
                             aggfunc="sum", fill_value=0)[arms]
    shares = None
    if expected_split is not None:
        shares = np.array([float(expected_split.get(a, 0.0)) for a in arms])
    totals = {b: rows.sum(axis=0).to_numpy(float) for b, rows in counts.groupby(level="by")}
    pvals = {}
    for key, row in counts.iterrows():  # one test per segment (few), not per customer
        seg = row.to_numpy(float)
        if shares is not None:
            pvals[key] = _stats.balance_pvalue(seg, shares)
        elif key[0] == ALL:
            pvals[key] = np.nan
        else:
            pvals[key] = _stats.independence_pvalue(seg, totals[key[0]] - seg)
    keys = list(zip(t["by"], t["segment"], strict=True))
    t["balance_p"] = [pvals.get(k, np.nan) for k in keys]
    t["unbalanced"] = t["balance_p"] < alpha
    flagged = t["unbalanced"].to_numpy()
    t.loc[flagged, "note"] = np.where(
        t.loc[flagged, "note"] == "", "unbalanced arms", t.loc[flagged, "note"] + "; unbalanced arms"
    )
    return t
