"""Cluster schemes: fit once, save, and re-apply to every later snapshot.

A scheme of ``kind = "cluster"`` in ``segflow.toml`` is fitted the first time it is run (on a
sample of the snapshot's customer features) and saved in the store table ``cluster_models``
under its name and version. Every later run, on any snapshot, re-applies the saved model:
the same scaling, the same centres, the same names, so a label means the same kind of
customer over time and migration between cluster segments is meaningful. Bumping the scheme's
``version`` fits a new model.

Table ``cluster_models`` (created here with ``CREATE TABLE IF NOT EXISTS``)::

    scheme VARCHAR, scheme_version VARCHAR, method VARCHAR, k INTEGER,
    fitted_at TIMESTAMP, snapshot_date DATE, model_json VARCHAR,
    PRIMARY KEY (scheme, scheme_version)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.datatypes as dt_ibis
import pandas as pd

from segflow.errors import ConfigError, InputError
from segflow.segments._cluster import (
    GaussianMixtureSegmenter,
    KMeansSegmenter,
    KPrototypesSegmenter,
    _BaseSegmenter,
)
from segflow.segments._cluster_model import ClusterModel

if TYPE_CHECKING:
    from segflow.config import SchemeSettings
    from segflow.store import Store

CLUSTER_MODELS_DDL = """
CREATE TABLE IF NOT EXISTS cluster_models (
    scheme VARCHAR NOT NULL,
    scheme_version VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    k INTEGER NOT NULL,
    fitted_at TIMESTAMP NOT NULL,
    snapshot_date DATE,
    model_json VARCHAR NOT NULL,
    PRIMARY KEY (scheme, scheme_version)
)
"""

METHODS: dict[str, type[_BaseSegmenter]] = {
    "kmeans": KMeansSegmenter,
    "gmm": GaussianMixtureSegmenter,
    "kprototypes": KPrototypesSegmenter,
}
#: Columns never used as clustering features.
RESERVED = {"customer_id", "snapshot_date", "run_id", "load_id", "source", "source_file", "source_row"}
#: Features of a cluster scheme that names none, when the table has them all (segflow's
#: customer features): behaviour in the classic RFM sense plus tenure and order size.
DEFAULT_FEATURES = ("recency_days", "frequency", "monetary", "tenure_days", "avg_order_value")
#: Seed of scheme fits: a scheme fitted twice on the same sample gives the same model.
SCHEME_SEED = 0


def cluster_feature_columns(schemes: Sequence[SchemeSettings]) -> list[str] | None:
    """The features the cluster schemes among ``schemes`` are fitted on and read (a scheme's
    ``features``, else :data:`DEFAULT_FEATURES`, which every
    features table has); None when one is not a feature of the registry (a survey answer, a
    custom column) or a scheme is nested in a cluster scheme: then every group is computed."""
    from segflow.features import FEATURES

    clusters = {s.name: s for s in schemes if s.kind == "cluster"}
    if any(s.within in clusters for s in schemes if s.within):
        return None
    columns = sorted({c for s in clusters.values() for c in (s.features or DEFAULT_FEATURES)})
    return None if any(c not in FEATURES for c in columns) else columns


def make_segmenter(method: str, **params: Any) -> _BaseSegmenter:
    """The segmenter of ``method`` ("kmeans", "gmm" or "kprototypes") with ``params``."""
    try:
        cls = METHODS[method]
    except KeyError:
        raise InputError(f"unknown clustering method {method!r}; expected one of {sorted(METHODS)}") from None
    return cls(**params)


def feature_columns(table: ibis.Table, requested: list[str] | None = None, *, id_col: str = "customer_id") -> list[str]:
    """The clustering features of ``table``: ``requested`` (checked); else
    :data:`DEFAULT_FEATURES` when all present; else every numeric, boolean and string column
    except the id and bookkeeping columns."""
    schema = table.schema()
    if requested:
        unknown = [c for c in requested if c not in schema]
        if unknown:
            from segflow._suggest import did_you_mean

            raise InputError(
                f"unknown feature(s) {unknown}; {did_you_mean(unknown[0], schema.names)}"
                f"available: {sorted(schema.names)}", column=unknown[0]
            )
        return list(requested)
    if all(name in schema for name in DEFAULT_FEATURES):
        return list(DEFAULT_FEATURES)
    skip = RESERVED | {id_col}
    return [
        name
        for name, typ in schema.items()
        if name not in skip and (typ.is_numeric() or typ.is_boolean() or typ.is_string())
    ]


def is_categorical(dtype: dt_ibis.DataType) -> bool:
    return dtype.is_string()


def sample_features(
    table: ibis.Table, columns: list[str], *, sample_size: int, seed: int = SCHEME_SEED,
    id_col: str = "customer_id", with_ids: bool = False,
) -> pd.DataFrame:
    """At most ``sample_size`` rows of ``table[columns]`` pulled from the engine.

    The sample is the ``sample_size`` customers first in the order of the MD5 digest of
    ``"{seed}:{id}"`` (ties by id): a seeded pseudo-random sample that every engine draws
    alike (an engine's own row sampling does not: DuckDB's seeded sample depends on its
    threads and Ibis has none on Spark), and only the sample leaves the engine. Rows come in
    id order (a fit depends on the order of its rows: the same customers give the same
    model on every engine and every run). ``with_ids``: indexed by the ids (index named
    ``id_col``), so that an error about a row names its customer.
    """
    n = int(table.count().execute())
    if n == 0:
        raise InputError("no customers to cluster (the feature table is empty)")
    schema = table.schema()
    # numbers leave the engine as float64: DECIMAL sums would arrive as Python Decimal objects
    # (and look like text to pandas); booleans become 0/1, as the engine assignment reads them
    subset = table.select(
        id_col,
        *[
            table[c].cast("float64").name(c) if schema[c].is_numeric() or schema[c].is_boolean() else table[c]
            for c in columns
        ],
    )
    if n > sample_size:
        key = (ibis.literal(f"{seed}:") + subset[id_col].cast("string")).hexdigest("md5")
        subset = subset.order_by([key, id_col]).limit(sample_size).order_by(id_col)
    else:
        subset = subset.order_by(id_col)
    frame = subset.to_pandas()
    return frame.set_index(id_col) if with_ids else frame.drop(columns=[id_col])


def fit_cluster_table(
    table: ibis.Table,
    columns: list[str] | None = None,
    *,
    method: str | None = None,
    id_col: str = "customer_id",
    **params: Any,
) -> _BaseSegmenter:
    """Fit a segmenter on a sample of an engine table (one row per customer).

    Parameters
    ----------
    table : ibis.Table
    columns : list of str, optional
        Features; default every numeric, boolean and string column but the id.
    method : {"kmeans", "gmm", "kprototypes"}, optional
        Default: "kprototypes" when a feature is categorical (string), else "kmeans".
    **params
        Hyper-parameters of the segmenter (``k``, ``k_range``, ``sample_size``, ...).
    """
    columns = feature_columns(table, columns, id_col=id_col)
    if not columns:
        raise InputError("no numeric or categorical feature columns to cluster")
    schema = table.schema()
    if method is None:
        method = "kprototypes" if any(is_categorical(schema[c]) for c in columns) else "kmeans"
    params.setdefault("random_state", SCHEME_SEED)
    segmenter = make_segmenter(method, **params)
    frame = sample_features(
        table, columns, sample_size=segmenter.sample_size, seed=int(params["random_state"] or 0), id_col=id_col,
        with_ids=True,
    )
    return segmenter.fit(frame)


# -- store ----------------------------------------------------------------------------------
def save_cluster_model(
    store: Store, scheme: str, version: str, model: ClusterModel, *, snapshot_date: dt.date | None = None
) -> None:
    """Save (or replace) the model of ``scheme``/``version`` in ``cluster_models``.

    One ``INSERT OR REPLACE`` statement, atomic on its own, so it also works inside a run's
    open transaction.
    """
    store.raw.execute(CLUSTER_MODELS_DDL)
    store.raw.execute(
        "INSERT OR REPLACE INTO cluster_models VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            scheme,
            version,
            model.method,
            model.k,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            snapshot_date,
            model.to_json(),
        ],
    )


def load_cluster_model(store: Store, scheme: str, version: str) -> ClusterModel | None:
    """The saved model of ``scheme``/``version``, or None if it was never fitted."""
    exists = store.raw.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cluster_models'"
    ).fetchone()[0]
    if not exists:
        return None
    row = store.raw.execute(
        "SELECT model_json FROM cluster_models WHERE scheme = ? AND scheme_version = ?",
        [scheme, version],
    ).fetchone()
    return None if row is None else ClusterModel.from_json(row[0])


def assign_cluster_scheme(
    scheme: SchemeSettings,
    features: ibis.Table,
    *,
    store: Store | None = None,
    snapshot_date: dt.date | None = None,
    by: str | None = None,
) -> ibis.Table:
    """Segments of a ``kind = "cluster"`` scheme for one snapshot's customer features.

    Parameters
    ----------
    scheme : SchemeSettings
        Uses ``name``, ``version``, ``features`` (default: all numeric and string columns),
        ``k`` (``"auto"`` or a number) and ``names`` (label overrides, keyed by the suggested
        name or the segment number).
    features : ibis.Table
        One row per customer (``customer_id`` plus feature columns) at one snapshot.
    store : Store, optional
        Where the fitted model is saved (``cluster_models``) and found again. Without a store
        the scheme is fitted afresh on every call; a store opened read-only gives its saved
        model, and a model fitted because it has none is not saved there.
    snapshot_date : date, optional
        Recorded with a newly fitted model.
    by : str, optional
        A column (``snapshot_date``) partitioning ``features`` into snapshots: kept in the
        output; a model not yet stored is fitted on the earliest snapshot alone (as a run
        that assigns snapshot by snapshot would).

    Returns
    -------
    ibis.Table
        ``customer_id``, ``segment``, ``segment_rank`` (unexecuted: computed in the engine).
    """
    model = load_cluster_model(store, scheme.name, scheme.version) if store is not None else None
    if model is None:
        sample = features
        if by is not None:
            first = features[by].min().execute()
            first = first.date() if isinstance(first, dt.datetime) else first
            sample = features.filter(features[by] == first).drop(by)
            if snapshot_date is None and isinstance(first, dt.date):
                snapshot_date = first
        segmenter = fit_cluster_table(sample, scheme.features or None, k=scheme.k)
        model = segmenter.model_
        if store is not None and not getattr(store, "read_only", False):
            save_cluster_model(store, scheme.name, scheme.version, model, snapshot_date=snapshot_date)
    missing = [c for c in model.prep.feature_names if c not in features.columns]
    if missing:
        raise ConfigError(
            f"cluster scheme {scheme.name!r} (version {scheme.version}) was fitted on features "
            f"{model.prep.feature_names}, but {missing} are missing from the feature table; "
            "bump the scheme's version to refit"
        )
    return model.assign(features, names=scheme.names, keys=[by] if by else ())
