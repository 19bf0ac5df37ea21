"""Feature preparation for clustering: numeric scaling and categorical encoding.

The same transformation is written twice, once in NumPy (for fitting and ``predict``) and once
as Ibis expressions (for assigning every customer in the engine). Both follow these steps:

Numeric column ``x``
    1. cast to float;
    2. if the column is *log-transformed*: ``x = ln(1 + max(x, 0))`` (values below 0 are
       clipped to 0 first: a negative net spend after returns counts as no spend);
    3. ``z = (x - center) / scale`` with ``center``/``scale`` the mean and standard deviation
       (``scaling="standard"``) or the median and IQR / 1.349 (``scaling="robust"``) of the
       fitting sample; a constant column gets ``scale = 1``;
    4. a missing value gets ``z = impute``, the median of the scaled fitting sample.

Categorical column ``c``
    A missing value becomes the level ``"(missing)"``; levels seen in less than 1 % of the
    fitting sample (or beyond the 20 most frequent) are pooled into ``"(other)"``; each kept
    level becomes an indicator column worth ``weight`` (0 otherwise). With
    ``weight = sqrt(gamma / 2)`` the squared Euclidean distance between two customers who
    differ in one categorical column is exactly ``gamma``: one mismatch costs ``gamma``
    squared standard units. A level never seen in fitting gives an all-zero indicator block,
    which is equally far from every centroid and therefore does not move the assignment.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import stats

from segflow._literals import float_literal
from segflow.errors import InputError

MISSING_LEVEL = "(missing)"
OTHER_LEVEL = "(other)"
MAX_LEVELS = 20
MIN_LEVEL_SHARE = 0.01
#: The largest share of values below 0 for which a column still counts as non-negative for
#: the log transform (its negatives clipped to 0): a few refunds in a money column.
MAX_NEGATIVE_SHARE = 0.01


class ClippedNegativesWarning(UserWarning):
    """A log-transformed column held values below 0, counted as 0."""


#: Sample skewness above which a non-negative numeric column is log1p-transformed.
SKEW_THRESHOLD = 1.0


@dataclass
class NumericSpec:
    """How one numeric feature is scaled (fitted values, JSON-serialisable)."""

    name: str
    log1p: bool
    center: float
    scale: float
    impute: float


@dataclass
class CategoricalSpec:
    """How one categorical feature is one-hot encoded (fitted values, JSON-serialisable)."""

    name: str
    levels: list[str]
    weight: float
    pooled: bool = False  # whether rare levels are pooled into "(other)"


@dataclass
class FeaturePrep:
    """A fitted feature preparation: numeric scalers and categorical encoders.

    Attributes
    ----------
    numeric : list of NumericSpec
    categorical : list of CategoricalSpec
    """

    numeric: list[NumericSpec] = field(default_factory=list)
    categorical: list[CategoricalSpec] = field(default_factory=list)

    # -- metadata -----------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Input columns, numeric first."""
        return [s.name for s in self.numeric] + [s.name for s in self.categorical]

    @property
    def design_names(self) -> list[str]:
        """Columns of the design matrix: scaled numerics, then ``column=level`` indicators."""
        names = [s.name for s in self.numeric]
        for spec in self.categorical:
            names += [f"{spec.name}={level}" for level in spec.levels]
        return names

    @property
    def n_numeric(self) -> int:
        return len(self.numeric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": [asdict(s) for s in self.numeric],
            "categorical": [asdict(s) for s in self.categorical],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePrep:
        return cls(
            numeric=[NumericSpec(**s) for s in data.get("numeric", [])],
            categorical=[CategoricalSpec(**s) for s in data.get("categorical", [])],
        )

    # -- NumPy path ----------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The design matrix of ``frame``, shape (n_rows, len(design_names))."""
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise InputError(
                f"the clustering features {missing} are missing; expected columns "
                f"{self.feature_names}",
                column=missing[0],
            )
        blocks = [self._numeric_block(frame)]
        for spec in self.categorical:
            codes = self.category_codes(frame[spec.name], spec)
            onehot = np.zeros((len(frame), len(spec.levels)))
            seen = codes >= 0
            onehot[np.nonzero(seen)[0], codes[seen]] = spec.weight
            blocks.append(onehot)
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))

    def _numeric_block(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.numeric)))
        for j, spec in enumerate(self.numeric):
            x = _as_float(frame[spec.name])
            if np.isinf(x).any():  # (scikit-learn's predict failed on it: "contains infinity")
                raise infinite_error(frame, spec.name, np.isinf(x))
            if spec.log1p:
                x = np.log1p(np.maximum(x, 0.0))
            z = (x - spec.center) / spec.scale
            out[:, j] = np.where(np.isnan(z), spec.impute, z)
        return out

    @staticmethod
    def category_codes(values: pd.Series, spec: CategoricalSpec) -> np.ndarray:
        """Index of each value's level in ``spec.levels`` (-1 for a level never seen)."""
        text = _as_level(values)
        if spec.pooled:
            known = set(spec.levels)
            text = text.where(text.isin(known), OTHER_LEVEL)
        lookup = {level: i for i, level in enumerate(spec.levels)}
        return text.map(lookup).fillna(-1).to_numpy(dtype=np.int64)

    # -- Ibis path -----------------------------------------------------------------------
    def design_columns(self, table: ibis.Table) -> dict[str, ibis.expr.types.FloatingValue]:
        """Ibis expressions of the design matrix columns over ``table`` (same order)."""
        cols: dict[str, Any] = {}
        for spec in self.numeric:
            x = table[spec.name].cast("float64")
            if spec.log1p:
                # not ibis.greatest: DuckDB's GREATEST skips NULLs (greatest(NULL, 0) = 0)
                x = ((x < _f(0.0)).ifelse(_f(0.0), x) + _f(1.0)).ln()
            z = (x - _f(spec.center)) / _f(spec.scale)
            cols[spec.name] = z.fill_null(_f(spec.impute))
        for spec in self.categorical:
            level = table[spec.name].cast("string").fill_null(MISSING_LEVEL)
            if spec.pooled:
                level = level.isin(spec.levels).ifelse(level, ibis.literal(OTHER_LEVEL))
            for name in spec.levels:
                # cast the boolean, not the literals: Ibis renders float literals as SQL
                # DECIMALs (DuckDB then overflows multiplying two of them)
                cols[f"{spec.name}={name}"] = (level == name).cast("float64") * _f(spec.weight)
        return cols


def _f(value: float) -> Any:
    """A float64 literal: the same double on every engine (a bare Python float, even typed
    float64, becomes a DECIMAL literal in SQL; :func:`segflow._literals.float_literal`)."""
    return float_literal(value)


def fit_prep(
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    scaling: str = "standard",
    log_transform: str | bool | list[str] = "auto",
    categorical_weight: float = 1.0,
) -> FeaturePrep:
    """Fit the feature preparation on a sample.

    Parameters
    ----------
    frame : DataFrame
        The fitting sample, one row per customer.
    numeric, categorical : list of str
        Columns of each kind.
    scaling : {"standard", "robust"}
        Centre/scale by mean and standard deviation, or by median and IQR / 1.349.
    log_transform : "auto", bool or list of str
        ``"auto"``: log1p every non-negative column whose sample skewness exceeds 1
        (monetary value, frequency and most counts); ``True``/``False``: all/none of the
        non-negative columns; a list: exactly those columns. A column with at most
        :data:`MAX_NEGATIVE_SHARE` of its values below 0 counts as non-negative (those
        values count as 0, with a :class:`ClippedNegativesWarning`).
    categorical_weight : float
        ``gamma``, the squared distance of one categorical mismatch, in squared standard units.
    """
    prep = FeaturePrep()
    for name in numeric:
        x = _as_float(frame[name])
        if np.isinf(x).any():
            raise infinite_error(frame, name, np.isinf(x))
        finite = x[~np.isnan(x)]
        if finite.size == 0:
            raise InputError(f"numeric feature has no values in the sample of {len(frame)} rows", column=name)
        log1p = _wants_log(name, finite, log_transform)
        if log1p:
            finite = np.log1p(np.maximum(finite, 0.0))
        center, scale = _center_scale(finite, scaling)
        impute = float(np.median((finite - center) / scale))
        prep.numeric.append(NumericSpec(name, log1p, center, scale, impute))
    weight = math.sqrt(categorical_weight / 2.0)
    for name in categorical:
        text = _as_level(frame[name])
        counts = text.value_counts()
        keep = counts[counts >= MIN_LEVEL_SHARE * len(text)].index[:MAX_LEVELS]
        levels = sorted(str(v) for v in keep)
        pooled = len(levels) < len(counts)
        if pooled and OTHER_LEVEL not in levels:
            levels.append(OTHER_LEVEL)
        prep.categorical.append(CategoricalSpec(name, levels, weight, pooled))
    return prep


def _wants_log(name: str, finite: np.ndarray, log_transform: str | bool | list[str]) -> bool:
    """Whether column ``name`` (its finite values) is log1p-transformed under
    ``log_transform``. A column counts as non-negative when at most
    :data:`MAX_NEGATIVE_SHARE` of its values are below 0 (a net spend after returns): those
    count as 0 (the transform clips them) in the skewness too, with a
    :class:`ClippedNegativesWarning` naming the column, so one refund does not switch the log
    off for a whole money column (one customer at -5 changed the partition of thousands)."""
    negative = int((finite < 0).sum())
    nonneg = negative <= MAX_NEGATIVE_SHARE * finite.size
    if isinstance(log_transform, list | tuple):
        wanted = name in log_transform
    elif log_transform is True:
        wanted = nonneg
    elif log_transform is False:
        return False
    elif log_transform != "auto":
        raise InputError(f"log_transform must be 'auto', True, False or a list, got {log_transform!r}")
    else:
        clipped = np.maximum(finite, 0.0)
        wanted = (nonneg and finite.size >= 3 and np.ptp(clipped) > 0
                  and bool(_moment(lambda v: float(stats.skew(v)), clipped, power=0) > SKEW_THRESHOLD))
    if wanted and negative:
        warnings.warn(ClippedNegativesWarning(
            f"{name}: {negative:,} of {finite.size:,} values are below 0 (e.g. a net spend "
            "after returns); the log transform counts them as 0"), stacklevel=3)
    return wanted


def _moment(f: Callable[[np.ndarray], float], x: np.ndarray, *, power: int = 1) -> float:
    """``f(x)`` (a mean, standard deviation: ``power`` 1; a skewness: 0), computed on
    ``x / max|x|`` and scaled back when it overflows: amounts past ~1e154 squared to inf,
    so the scale fell back to 1 and the skewness to NaN (no log), and the clustering then
    said "k leaves a segment without customers" of two distinct groups."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = f(x)
        if np.isfinite(value) or not x.size:
            return value
        top = float(np.max(np.abs(x)))
        return f(x / top) * top**power if 0 < top < np.inf else value


def _center_scale(x: np.ndarray, scaling: str) -> tuple[float, float]:
    if scaling == "standard":
        center, scale = _moment(lambda v: float(np.mean(v)), x), _moment(lambda v: float(np.std(v)), x)
    elif scaling == "robust":
        q1, center, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
        scale = (q3 - q1) / 1.349
        if scale <= 0:  # more than half the values tie: fall back to the standard deviation
            scale = _moment(lambda v: float(np.std(v)), x)
    else:
        raise InputError(f"scaling must be 'standard' or 'robust', got {scaling!r}")
    return center, (scale if scale > 0 and np.isfinite(scale) else 1.0)


def refuse_infinite(frame: pd.DataFrame, columns: list[str]) -> None:
    """Refuse the first of the numeric ``columns`` of ``frame`` holding an infinite value
    (:func:`infinite_error`); a missing value is fine."""
    for name in columns:
        bad = np.isinf(_as_float(frame[name]))
        if bad.any():
            raise infinite_error(frame, name, bad)


def infinite_error(frame: pd.DataFrame, column: str, bad: np.ndarray) -> InputError:
    """The error of the infinite values (``bad``) of ``column``, naming its first rows as
    the project's other messages do: the customer ids when the frame's index holds them (a
    named index, or labels that are not numbers: ``customers 'C7' and 'C9'``), else the
    rows, its positions from 1 (``rows 2, 5, 9, ... (12 in all), column 'b'``)."""
    from segflow._rows import SHOWN_ROWS

    n = int(bad.sum())
    first = np.flatnonzero(bad)[:SHOWN_ROWS]
    index = frame.index
    if index.name is None and pd.api.types.is_integer_dtype(index.dtype):
        return InputError(_infinite_what(n) + _EXPECTED_FINITE, row=(first + 1).tolist(), column=column,
                          rows_in_all=n)
    return _infinite_ids_error(column, n, [v.item() if isinstance(v, np.generic) else v for v in index[first]])


_EXPECTED_FINITE = "; expected finite numbers (or empty cells for missing)"


def _infinite_what(n: int) -> str:
    return f"numeric feature has {n:,} infinite value{'s' if n > 1 else ''}"


def _infinite_ids_error(column: str, n: int, first_ids: list[Any]) -> InputError:
    """The error of ``n`` infinite values of ``column`` naming the customers of the first
    (``customers 'C7' and 'C9'``, ``customers 'C1', 'C2', ... (12 in all)``)."""
    shown = [repr(v) for v in first_ids]
    if n > len(shown):
        ids = f"{', '.join(shown)}, ... ({n:,} in all)"
    else:
        ids = shown[0] if n == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    return InputError(f"{_infinite_what(n)} (customer{'s' if n > 1 else ''} {ids}){_EXPECTED_FINITE}",
                      column=column)


def refuse_infinite_table(table: ibis.Table, columns: list[str], id_col: str) -> None:
    """Refuse the first of the numeric ``columns`` of an Ibis ``table`` holding an infinite
    value, as :func:`refuse_infinite` a frame: one aggregate query, and one more naming the
    first customers (by id: a table's order is no row number) when one is found."""
    from segflow._rows import SHOWN_ROWS

    if not columns:
        return
    counts = table.aggregate(**{f"_inf{i}": table[c].cast("float64").isinf().sum()
                                for i, c in enumerate(columns)}).to_pyarrow().to_pylist()[0]
    for i, column in enumerate(columns):
        n = int(counts[f"_inf{i}"] or 0)
        if n:
            bad = table.filter(table[column].cast("float64").isinf())
            ids = bad.select(bad[id_col]).distinct().order_by(id_col).limit(SHOWN_ROWS)
            raise _infinite_ids_error(column, n, ids.to_pyarrow()[id_col].to_pylist())


def _as_float(values: pd.Series) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy(dtype=float)
    converted = pd.to_numeric(values, errors="coerce")
    return converted.to_numpy(dtype=float, na_value=np.nan)


def _as_level(values: pd.Series) -> pd.Series:
    text = values.astype("string").fillna(MISSING_LEVEL)
    return text.astype(object)


def split_columns(frame: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    """Split ``columns`` into numeric and categorical by dtype (bool counts as numeric 0/1)."""
    numeric, categorical = [], []
    for name in columns:
        if name not in frame.columns:
            from segflow._suggest import did_you_mean

            raise InputError(f"no column {name!r}; {did_you_mean(name, frame.columns)}"
                             f"columns are {list(frame.columns)}", column=name)
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(name)
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            raise InputError("date columns cannot be clustered; derive a number of days first", column=name)
        else:
            categorical.append(name)
    return numeric, categorical
