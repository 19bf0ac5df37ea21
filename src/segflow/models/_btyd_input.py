"""Input checks of the BTYD models: the compressed summary's triples, read from a pandas,
Arrow or Ibis table, with a one-line error naming the offending row and column."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from segflow._rows import SHOWN_ROWS
from segflow.errors import ArgumentError, InputError
from segflow.errors import where as rows_text

#: Column names of other libraries accepted for the canonical ones.
_ALIASES = {"frequency": "x", "recency": "t_x", "periods": "n", "weights": "count"}


def as_triples(
    data: Any,
    columns: tuple[str, ...],
    *,
    integer: tuple[str, ...] = ("x",),
    nullable: tuple[str, ...] = ("monetary_value",),
    return_namer: bool = False,
) -> Any:
    """Validate a summary and return its columns as float arrays plus the weights.

    Parameters
    ----------
    data : pandas.DataFrame, pyarrow.Table or ibis.Table
        One row per customer or per distinct triple; an optional ``count`` column holds weights.
        An Ibis table is compressed in its engine first (see :func:`compress`).
    columns : tuple of str
        The required columns, in the model's order.
    return_namer : bool, default=False
        Also return the function naming the offending rows in error messages (the customers
        when the data has a ``customer_id`` column, else the rows' numbers and the first's
        values: :data:`Namer`).

    Returns
    -------
    (arrays, weights) or (arrays, weights, namer)
    """
    frame = _to_pandas(data, columns)
    renames = {k: v for k, v in _ALIASES.items() if k in frame.columns and v not in frame.columns}
    if renames:
        frame = frame.rename(columns=renames)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"the summary lacks the column(s) {missing}; expected {list(columns)} "
            "(plus an optional 'count' of customers per row)",
            column=missing[0],
        )
    arrays = {}
    namer = _row_namer(frame, columns)
    for col in columns:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        if col in nullable:
            # a missing or negative mean spend is the spend model's to handle (it leaves
            # such customers out of its fit and counts them); only infinities are errors
            values = np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=-np.inf)
            _check_column(values, col, integer=False, where=namer, negative_ok=True)
        else:
            _check_column(values, col, integer=col in integer, where=namer)
        arrays[col] = values
    if "count" in frame.columns:
        weights = pd.to_numeric(frame["count"], errors="coerce").to_numpy(dtype=float)
        _check_column(weights, "count", integer=False, where=namer)
    else:
        weights = np.ones(len(frame))
    if return_namer:
        return arrays, weights, namer
    return arrays, weights


class Named(NamedTuple):
    """Offending rows of a summary as an error names them: ``place`` (``customers 'b' and
    'e'``, ``summary rows 2, 5, 9, ... (12 in all)``), the ``first`` of them (``customer
    'b'``, ``row 2``), the ``values`` of its columns as given (``x=-1, t_x=0.0, T=39.0``) and
    how many rows offend in all (``n``)."""

    place: str
    first: str
    values: str
    n: int
    ids: bool


#: How a check names the rows where a mask over the summary's rows holds.
Namer = Callable[[np.ndarray], Named]


def _row_namer(frame: pd.DataFrame, columns: tuple[str, ...]) -> Namer:
    """How an error names the offending rows: the first customers when the summary has ids
    (``customer_id``), else the summary's rows (positions from 1) with the values of the
    first: a compressed summary's row number means nothing to a user, its values do."""
    present = [c for c in columns if c in frame.columns]
    ids = frame["customer_id"].to_numpy() if "customer_id" in frame.columns else None

    def name(bad: np.ndarray) -> Named:
        rows = np.flatnonzero(bad)
        n, first = len(rows), rows[:SHOWN_ROWS]
        values = ", ".join(f"{c}={frame[c].iloc[first[0]]!s}" for c in present)
        if ids is None:
            return Named(f"summary {rows_text(row=(first + 1).tolist(), rows_in_all=n)}",
                         f"row {first[0] + 1}", values, n, False)
        shown = [repr(str(ids[r])) for r in first]
        if n > len(shown):
            listed = f"{', '.join(shown)}, ... ({n:,} in all)"
        else:
            listed = shown[0] if n == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        return Named(f"customer{'s' if n > 1 else ''} {listed}", f"customer {shown[0]}", values,
                     n, True)

    return name


def _positions(bad: np.ndarray) -> Named:
    """Rows of arrays without a summary behind them: positions from 1."""
    rows = np.flatnonzero(bad)
    first = rows[:SHOWN_ROWS]
    return Named(rows_text(row=(first + 1).tolist(), rows_in_all=len(rows)), f"row {first[0] + 1}",
                 "", len(rows), False)


def refuse_rows(bad: np.ndarray, column: str, expected: str, got: str, *,
                where: Namer | None = None, values: bool = True) -> None:
    """Raise an :class:`InputError` when ``bad`` (a mask over the summary's rows) holds
    anywhere: the first offending rows (customers when the summary has ids), the column,
    what was expected and what the first offending row has (``got``), e.g. ``customers 'b'
    and 'e', column 'x': expected a non-negative integer, got -1.0 (customer 'b')``; rows
    without ids with the first's ``values`` as given, unless ``got`` has them."""
    if not bad.any():
        return
    named = (where or _positions)(bad)
    detail = [named.first] if named.n > 1 else []
    if values and named.values and not named.ids:
        detail.append(named.values)
    tail = f" ({': '.join(detail)})" if detail else ""
    sep = ";" if "," in expected else ","  # (a rule of several parts, then what it got)
    raise InputError(f"{named.place}, column {column!r}: expected {expected}{sep} got {got}{tail}")


def _to_pandas(data: Any, columns: tuple[str, ...]) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas") and not hasattr(data, "execute"):
        # pyarrow (a Table has group_by too: it was refused as "expected ..., got Table")
        return data.to_pandas()
    if hasattr(data, "group_by") and hasattr(data, "execute"):  # ibis.Table
        keys = [c for c in columns if c in data.columns]
        # sorted: the fit sums over rows, so the same triples in another order (a parallel
        # group-by's) would move the optimum in its last bits
        return data.group_by(keys).aggregate(count=data.count()).order_by(keys).execute()
    raise InputError(f"expected a pandas DataFrame, Arrow or Ibis table, got {type(data).__name__}")


def _check_column(
    values: np.ndarray,
    col: str,
    *,
    integer: bool,
    where: Namer | None = None,
    negative_ok: bool = False,
) -> None:
    bad = ~np.isfinite(values)
    if not negative_ok:
        bad |= values < 0
    if integer:
        bad |= values != np.round(values)
    if bad.any():
        kind = (
            "a non-negative integer" if integer
            else "a finite number" if negative_ok else "a finite non-negative number"
        )
        refuse_rows(bad, col, kind, repr(float(values[int(np.flatnonzero(bad)[0])])), where=where)


def check_recency(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    t_name: str = "T",
    where: Namer | None = None,
) -> None:
    """Recency must lie in [0, T] and be 0 when there are no repeat purchases. A repeat buyer
    with t_x = 0 is accepted: the likelihoods are defined there, and a summary in coarse
    units (months) has repeats in the unit of the first purchase.

    ``where`` names the offending rows (see :func:`as_triples`); the message also gives the
    first one's values, since a compressed summary's row number means nothing to a user.
    """
    bad = (t_x > T + 1e-9) | ((x == 0) & (t_x > 0)) | (t_x < 0) | (T < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        refuse_rows(bad, "t_x", f"0 <= t_x <= {t_name} and t_x = 0 when x = 0", f"x={x[row]:g}, t_x={t_x[row]:g}, {t_name}={T[row]:g}", where=where,
                    values=False)


def as_arrays(names: tuple[str, ...], *values: Any) -> tuple[np.ndarray, ...]:
    """The arguments of a prediction (``p_alive(x, t_x, T)``...) as float arrays of one
    shape (NumPy broadcasting): an :class:`InputError` naming the argument that holds no
    number (``argument 'x': expected numbers, got 'a' (position 1)``), or the shapes that do
    not broadcast, where NumPy raised a bare ``ValueError``."""
    try:
        arrays = np.broadcast_arrays(*values)
    except ValueError:
        shapes = ", ".join(f"{n} {np.shape(v)}" for n, v in zip(names, values, strict=True))
        raise ArgumentError(f"the arguments do not broadcast to one shape: {shapes}") from None
    out = []
    for name, given, array in zip(names, values, arrays, strict=True):
        try:
            out.append(np.asarray(array, dtype=float))
        except (TypeError, ValueError):
            flat = np.ravel(np.asarray(given, dtype=object))
            numbers = pd.to_numeric(pd.Series(flat), errors="coerce")
            bad = numbers.isna().to_numpy() & pd.notna(flat)
            if not bad.any():  # a missing value float() refuses (pd.NA of a nullable boolean, NaT)
                missing = pd.to_numeric(pd.Series(np.ravel(np.asarray(array, dtype=object))), errors="coerce")
                out.append(missing.to_numpy(dtype=float, na_value=np.nan).reshape(np.shape(array)))
                continue
            first = int(np.flatnonzero(bad)[0])
            raise ArgumentError(f"argument {name!r}: expected numbers, got {flat[first]!r} "
                                f"(position {first + 1})") from None
    return tuple(out)


# -- the domain of the prediction methods' arguments -----------------------------------------
# The rule is the fit's (as_triples, check_recency): x a whole number >= 0, times finite and
# >= 0, 0 <= t_x <= T, t_x = 0 when x = 0 (a repeat buyer with t_x = 0 is accepted, as in the
# fit); a horizon t finite and >= 0. NaN is refused everywhere: a prediction is no place to
# decide what a missing value means. Outside the domain the closed forms return numbers
# that look like answers (P(alive) above 1, negative expected purchases), so the public
# methods check and the private ones (``_p_alive``...) assume valid input.


#: The index of the pandas Series a prediction was given (set by :func:`pandas_aware` for the
#: call): an argument's error names the offending position's label too.
_LABELS: contextvars.ContextVar[pd.Index | None] = contextvars.ContextVar("_LABELS", default=None)


def _refuse_argument(method: str, name: str, bad: np.ndarray, expected: str,
                     got: Callable[[int], str]) -> None:
    """Raise an :class:`ArgumentError` when ``bad`` holds anywhere: the method, the argument,
    the rule, the first offending value (``got(flat position)``), where it is and how many
    values offend, e.g. ``BetaGeoModel.p_alive: argument 'x': expected a whole number >= 0;
    got -1.0 at position 3 (2 of 10 values)``."""
    flat = np.ravel(bad)
    if not flat.any():
        return
    offending = np.flatnonzero(flat)
    first, total = int(offending[0]), flat.size
    if total == 1:
        place = ""
    elif np.ndim(bad) <= 1:
        place = f" at position {first + 1}"
        labels = _LABELS.get()
        if labels is not None and len(labels) == total:  # (a Series' customer, by its label)
            place += f" (label {labels[first:first + 1].tolist()[0]!r})"
    else:
        place = f" at index {tuple(int(i) for i in np.unravel_index(first, np.shape(bad)))}"
    count = f" ({len(offending):,} of {total:,} values)" if total > 1 else ""
    raise ArgumentError(f"{method}: argument {name!r}: expected {expected}; got {got(first)}{place}{count}")


def _check_values(method: str, name: str, values: np.ndarray, *, integer: bool) -> None:
    """One argument on its own: finite, >= 0 and, with ``integer``, a whole number."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < 0)
        if integer:
            bad |= values != np.floor(values)
    expected = "a whole number >= 0" if integer else "a finite number >= 0"
    _refuse_argument(method, name, bad, expected, lambda i: repr(float(np.ravel(values)[i])))


def check_horizon(method: str, t: Any, *, name: str = "t", integer: bool = False) -> Any:
    """The horizon of a prediction (a number or an array of them) as given when it is a finite
    number >= 0 (a whole number with ``integer``: BG/BB's opportunities), else an
    :class:`ArgumentError` naming it."""
    if type(t) in (int, float) and 0 <= t < np.inf and (not integer or t == int(t)):
        return t  # (a plain number, the common case: no array built)
    if (type(t) is np.ndarray and t.dtype == np.float64 and t.size and not integer
            and t.min() >= 0 and t.max() < np.inf):  # (NaN fails min() >= 0)
        return t  # several horizons at once (real-time scoring): two reductions
    (values,) = as_arrays((name,), t)
    _check_values(method, name, values, integer=integer)
    return values if np.ndim(t) else float(values)


def check_triples(method: str, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, *,
                  t_name: str = "T", discrete: bool = False) -> None:
    """The (x, t_x, T) of a prediction (arrays of one shape, as :func:`as_arrays` gives) in
    the fit's domain, else an :class:`ArgumentError` naming the first rule broken. With
    ``discrete`` (BG/BB, ``T`` named ``n``): t_x and n whole numbers and x <= t_x too."""
    if x.size == 1 and not discrete:  # one customer (real-time scoring): 1 us, not 12
        xv, tv, Tv = float(x.flat[0]), float(t_x.flat[0]), float(T.flat[0])
        if 0 <= xv < np.inf and xv == int(xv) and 0 <= tv <= Tv + 1e-9 and Tv < np.inf and (xv > 0 or tv == 0):
            return
    with np.errstate(invalid="ignore"):
        ok = ((x >= 0) & (t_x >= 0) & (t_x <= T + 1e-9) & (x == np.floor(x)) & np.isfinite(x)
              & np.isfinite(T) & ((x > 0) | (t_x == 0)))
        if discrete:
            ok &= (t_x == np.floor(t_x)) & (T == np.floor(T)) & (x <= t_x)
    if ok.all():
        return
    _check_values(method, "x", x, integer=True)
    _check_values(method, "t_x", t_x, integer=discrete)
    _check_values(method, t_name, T, integer=discrete)
    x, t_x, T = (np.ravel(v) for v in (x, t_x, T))
    shape = np.shape(ok)

    def got(i: int) -> str:
        return f"x={x[i]:g}, t_x={t_x[i]:g}, {t_name}={T[i]:g}"

    _refuse_argument(method, "t_x", (t_x > T + 1e-9).reshape(shape), f"t_x <= {t_name}", got)
    _refuse_argument(method, "t_x", ((x == 0) & (t_x > 0)).reshape(shape),
                     "t_x = 0 when x = 0 (no repeat purchase)", got)
    _refuse_argument(method, "x", (x > t_x).reshape(shape),
                     "x <= t_x (one transaction per opportunity at most)", got)


def check_spend(method: str, x: np.ndarray, m: np.ndarray) -> None:
    """The (x, monetary_value) of the spend model's prediction: x a whole number >= 0; the
    mean spend any number or NaN (no repeat spend: the population's mean, as in the fit),
    never infinite."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x) & (x >= 0) & (x == np.floor(x)) & ~np.isinf(m)
    if ok.all():
        return
    _check_values(method, "x", x, integer=True)
    _refuse_argument(method, "monetary_value", np.isinf(m), "a finite number or NaN",
                     lambda i: repr(float(np.ravel(m)[i])))


# -- pandas in, pandas out ---------------------------------------------------------------------
_Method = TypeVar("_Method", bound=Callable[..., Any])
#: What a prediction method returns: a float for numbers, a Series for Series (their
#: index), else an array of the arguments' broadcast shape.
Prediction = np.ndarray | pd.Series | float


def _labels(index: pd.Index, limit: int = 3) -> str:
    """The first labels of an index, for a message: ``'a', 'b', 'c', ... (10 in all)``."""
    shown = ", ".join(repr(label) for label in index[:limit].tolist())
    return f"{shown}, ... ({len(index):,} in all)" if len(index) > limit else shown or "none"


def _same_counts(a: pd.Index, b: pd.Index) -> bool:
    """Whether two indexes of the same labels hold each as many times (the same labels in
    another order), which the set differences of duplicated labels do not tell."""
    if a.is_unique and b.is_unique:
        return True
    counts = pd.Series(a).value_counts(dropna=False)
    return bool(counts.eq(pd.Series(b).value_counts(dropna=False).reindex(counts.index)).all())


def series_index(method: str, names: tuple[str, ...], values: tuple[Any, ...]) -> pd.Index | None:
    """The index shared by the pandas Series among a prediction's arguments (None without
    Series), else an :class:`ArgumentError`: Series are matched by their labels, never by
    position, so two whose indexes differ (other customers, another order, a filter applied
    to one of them) are refused, naming the method, the arguments and where they differ."""
    first: tuple[str, pd.Index] | None = None
    for name, value in zip(names, values, strict=False):
        if not isinstance(value, pd.Series):
            continue
        if first is None:
            first = (name, value.index)
        elif not value.index.equals(first[1]):
            a, index = first
            only_a = index.difference(value.index, sort=False)  # (sort=False: mixed label types)
            only_b = value.index.difference(index, sort=False)
            if len(index) != len(value.index):
                how = f"{len(index):,} labels against {len(value.index):,}"
            elif len(only_a) == len(only_b) == 0 and not _same_counts(index, value.index):
                how = "the same labels, repeated a different number of times"
            elif len(only_a) == len(only_b) == 0:
                how = "the same labels in another order"
            elif len(only_a):
                how = f"labels of {a!r} not in {name!r}: {_labels(only_a)}"
            else:
                how = f"labels of {name!r} not in {a!r}: {_labels(only_b)}"
            # reindex cannot align labels that repeat: the columns of one frame can
            hint = (f"e.g. {name}.reindex({a}.index)" if index.is_unique and value.index.is_unique
                    else "a label repeats, which reindex cannot align: take the arguments as "
                         "columns of one DataFrame")
            raise ArgumentError(
                f"{method}: arguments {a!r} and {name!r} are pandas Series with different indexes "
                f"({how}); align them first ({hint}): they are matched by label, not by position")
    return None if first is None else first[1]


def _plain(value: Any) -> Any:
    """A Series as its values for the closed forms: numeric ones (nullable ``Int64`` and
    ``Float64`` too) as floats with NaN for a missing value (refused by the domain check,
    where ``pd.NA`` gave a TypeError), any other (text) as given."""
    if isinstance(value, pd.Series):
        if pd.api.types.is_numeric_dtype(value.dtype) and not pd.api.types.is_bool_dtype(value.dtype):
            return value.to_numpy(dtype=float, na_value=np.nan)
        return value.to_numpy()
    return value


def _columns(method: str, names: tuple[str, ...], values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments with a one-column pandas DataFrame (``df[["frequency"]]``) as its column, a
    Series; a DataFrame of other widths an :class:`ArgumentError` naming the argument. NumPy
    read an ``(n, 1)`` frame as a column vector: against Series of ``n`` customers it broadcast
    to an ``n`` by ``n`` array of every pairing, returned without a word."""
    out = []
    for name, value in zip(names, values, strict=False):
        if isinstance(value, pd.DataFrame):
            if value.shape[1] != 1:
                raise ArgumentError(
                    f"{method}: argument {name!r}: expected a pandas Series (one column, "
                    f"df[{name!r}]); got a DataFrame of {value.shape[1]} columns")
            value = value.iloc[:, 0]
        out.append(value)
    return (*out, *values[len(out):])


def pandas_aware(*names: str) -> Callable[[_Method], _Method]:
    """Decorate a public prediction whose arguments after the first (a method's ``self``, a
    function's ``model``) are ``names``, in order: pandas Series in, a Series out with their
    index, named after the prediction (the Series must share one index: :func:`series_index`;
    an argument error names the offending value's label); numbers in, a ``float`` out;
    a one-column DataFrame is its column (:func:`_columns`); anything else (lists, arrays) in,
    the prediction's NumPy array out, as before. Arrays cost one loop over the arguments
    (real-time scoring passes arrays)."""

    def decorate(method: _Method) -> _Method:
        signature = inspect.signature(method)
        in_class = method.__qualname__ != method.__name__

        def label(first: Any) -> str:  # (a method: named by the model's class)
            return f"{type(first).__name__}.{method.__name__}" if in_class else method.__name__

        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs:  # (keywords: the slow path, positions from the signature)
                bound = signature.bind(self, *args, **kwargs)
                args, kwargs = bound.args[1:], bound.kwargs
            index = None
            for value in args:
                if isinstance(value, (pd.Series, pd.DataFrame)):
                    args = _columns(label(self), names, args)
                    index = series_index(label(self), names, args)
                    args = tuple(_plain(v) for v in args)
                    break
            if index is None:
                out = method(self, *args, **kwargs)
            else:
                token = _LABELS.set(index)
                try:
                    out = method(self, *args, **kwargs)
                finally:
                    _LABELS.reset(token)
            if index is not None and np.ndim(out) == 1 and len(out) == len(index):
                return pd.Series(out, index=index, name=method.__name__)
            if getattr(out, "ndim", 1) == 0:
                return float(out)
            return out

        return call  # type: ignore[return-value]

    return decorate
