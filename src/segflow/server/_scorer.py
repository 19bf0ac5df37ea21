"""Real-time scoring of one customer from posted transactions.

The same feature and scheme code as ``segflow run`` (Ibis), compiled once to SQL per copy
of the store and snapshot date, then executed per request on a small in-memory DuckDB
per thread:

1. features: :func:`segflow.features.customer_features` on the posted rows (events,
   exposures and surveys empty), as of the snapshot (default: the store's latest), for the
   feature groups the schemes read (:func:`segflow.pipeline.required_feature_groups`);
2. segments: each scheme's :func:`segflow.segments.assign` on the stored features of a
   reference sample of the customer base at that snapshot (the whole base up to
   :data:`REFERENCE_SIZE` customers; a hash-ordered sample beyond) plus this customer, so
   quantile schemes (RFM, value tiers) rank the customer among the others;
3. scores: BG/NBD and Gamma-Gamma (as in ``segflow run``) fitted once per copy on the
   stored history before the snapshot; P(alive), expected purchases and 52-week CLV.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import duckdb
import ibis
import pandas as pd
import pyarrow as pa

from segflow.errors import SegflowError
from segflow.store import CANONICAL_TABLES

REFERENCE_SIZE = 20_000
_DUCK = {"VARCHAR": pa.string(), "TIMESTAMP": pa.timestamp("us"), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}


def _empty(name: str) -> pa.Table:
    cols = CANONICAL_TABLES[name]
    return pa.table({c: pa.array([], _DUCK[t]) for c, t in cols.items()})


class Scorer:
    """Compiled scoring for one copy of the store and one snapshot date."""

    def __init__(self, project: Any, snapshot: dt.date) -> None:
        from segflow.features import customer_features
        from segflow.pipeline import required_feature_groups, resolve_schemes
        from segflow.segments import assign

        self.snapshot = snapshot
        settings = project.settings
        self.schemes = [s for s in resolve_schemes(settings) if s.kind != "cluster"]
        raw = project.store.raw
        # reference sample: stored features at the snapshot (latest run keeps only the latest)
        ref = raw.execute(
            "SELECT * EXCLUDE (snapshot_date) FROM customer_features WHERE snapshot_date = ? "
            "ORDER BY hash(customer_id) LIMIT ?", [snapshot, REFERENCE_SIZE],
        ).to_arrow_table()
        if ref.num_rows == 0:
            raise SegflowError(f"no stored features at {snapshot}: scoring needs a completed `segflow run`")
        self.reference = ref
        # compile features and assignments once, on a template connection
        template = ibis.duckdb.connect()
        for name in CANONICAL_TABLES:
            template.create_table(name, _empty(name))
        tables = {name: template.table(name) for name in CANONICAL_TABLES}
        # only the feature groups the schemes read (as `segflow run` does for older snapshots)
        groups = required_feature_groups(tables, self.schemes, settings=settings)
        features = customer_features(tables, snapshot, window_days=settings.rfm.window_days, groups=groups)
        self.features_sql = ibis.to_sql(features, dialect="duckdb")
        self.feature_columns = features.columns
        template.create_table("features_input", ref.slice(0, 0))
        unbound = template.table("features_input")
        self.assign_sql = {}
        self.notes: list[str] = []
        for scheme in self.schemes:
            try:
                expr = assign(scheme, unbound, store=project.store, schemes=self.schemes)
                self.assign_sql[scheme.name] = ibis.to_sql(expr.select("customer_id", "segment"), dialect="duckdb")
            except Exception as exc:  # noqa: BLE001 - a scheme that cannot score is named, not fatal
                self.notes.append(f"scheme {scheme.name} is not scored: {exc}")
        template.disconnect()
        self._models = self._fit_models(project)
        self._local = threading.local()

    def _fit_models(self, project: Any) -> Any:
        from segflow.models import BetaGeoModel, GammaGammaModel, btyd_summary, compress

        try:
            summary = btyd_summary(project.store.table("transactions"), calibration_end=self.snapshot,
                                   time_unit="W", warn=False).cache()
            triples = compress(summary)
            model = BetaGeoModel().fit(triples[triples["T"] > 0])
            spend = GammaGammaModel().fit(compress(summary, ("x", "monetary_value")))
            return model, spend
        except (SegflowError, ValueError) as exc:
            self.notes.append(f"no model scores: {exc}")
            return None

    def _con(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect()
            con.execute("SET threads = 1")
            for name in CANONICAL_TABLES:
                con.register(f"_empty_{name}", _empty(name))
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM _empty_{name}")
            con.register("_reference", self.reference)
            con.execute("CREATE TABLE features_input AS SELECT * FROM _reference LIMIT 0")
            self._local.con = con
        return con

    def score(self, customer_id: str, transactions: pa.Table, attributes: dict[str, Any]) -> dict[str, Any]:
        con = self._con()
        con.execute("DELETE FROM transactions")
        con.execute("DELETE FROM customers")
        con.register("_tx", transactions)
        con.execute("INSERT INTO transactions BY NAME SELECT * FROM _tx")  # noqa: S608
        con.unregister("_tx")
        attrs = {c: attributes.get(c) for c in CANONICAL_TABLES["customers"] if c != "customer_id"}
        cols = ", ".join(["customer_id", *attrs])
        con.execute(f"INSERT INTO customers ({cols}) VALUES ({', '.join('?' * (len(attrs) + 1))})",
                    [customer_id, *attrs.values()])
        features = con.execute(self.features_sql).to_arrow_table()
        if features.num_rows == 0:
            raise SegflowError(f"no transactions before {self.snapshot}: nothing to score")
        con.execute("DELETE FROM features_input")
        con.execute("INSERT INTO features_input SELECT * FROM _reference WHERE customer_id <> ?", [customer_id])
        con.register("_new", features)
        con.execute("INSERT INTO features_input BY NAME SELECT * FROM _new")
        con.unregister("_new")
        segments = {}
        for name, sql in self.assign_sql.items():
            row = con.execute(f"SELECT segment FROM ({sql}) WHERE customer_id = ?", [customer_id]).fetchone()  # noqa: S608
            segments[name] = row[0] if row else None
        return {"segments": segments, "scores": self._scores(features), "features": features.to_pylist()[0]}

    def _scores(self, features: pa.Table) -> dict[str, float] | None:
        if self._models is None:
            return None
        from segflow.models._scoring import predict_triples

        model, spend = self._models
        f = features.to_pylist()[0]
        first, last = f.get("first_purchase_date"), f.get("last_purchase_date")
        if first is None:
            return None
        snap = pd.Timestamp(self.snapshot)
        orders = int(f.get("frequency") or 0)
        x = max(orders - 1, 0)
        T = (snap - pd.Timestamp(first)).days / 7.0
        t_x = (pd.Timestamp(last) - pd.Timestamp(first)).days / 7.0 if x > 0 else 0.0
        preds = predict_triples(model, pd.DataFrame({"x": [x], "t_x": [t_x], "T": [T]}), horizon=52.0, time_unit="W")
        p, q, gamma = (spend.params_[k] for k in ("p", "q", "gamma"))
        m = float(f.get("monetary") or 0.0) / orders if orders else 0.0
        has = x > 0 and m > 0
        expected_spend = (p * (gamma + (m * x if has else 0.0))) / (p * (x if has else 0) + (q - 1))
        out = {k: float(preds[k].iloc[0]) for k in ("p_alive", "expected_purchases", "p_no_purchase")}
        out["expected_spend"] = float(expected_spend)
        out["clv"] = float(expected_spend * preds["discounted_purchases"].iloc[0])
        return out
