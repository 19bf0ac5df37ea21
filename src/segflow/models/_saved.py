"""Fitted CLV models saved with the scores they produced (store table ``model_params``).

``segflow run`` fits BG/NBD and a spend model at the latest snapshot and writes every
customer's scores; it also saves the fitted parameters here, so that real-time scoring
(``POST /api/v1/score``) applies exactly the same models to a customer's posted history
without refitting them. One row per (snapshot, model name): a JSON document::

    {"count": {"model": "BetaGeoModel", "params": {"r": ..., "alpha": ..., "a": ..., "b": ...}},
     "spend": {"model": "GammaGammaModel", "params": {"p": ..., "q": ..., "gamma": ...}}
              | {"model": "constant", "expected_spend": ..., "source": ...} | null,
     "horizon": 52.0, "time_unit": "W", "annual_discount_rate": 0.1}
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from segflow.models._btyd_base import BTYDModel
from segflow.models._gammagamma import ConstantSpendModel, GammaGammaModel


def model_document(model: BTYDModel, spend: GammaGammaModel | ConstantSpendModel | None, *,
                   horizon: float, time_unit: str, annual_discount_rate: float) -> str:
    """The JSON document of a fitted count model and spend model (see the module notes)."""
    if spend is None:
        spend_doc = None
    elif isinstance(spend, ConstantSpendModel):
        spend_doc = spend.to_dict()
    else:
        spend_doc = {"model": type(spend).__name__, "params": dict(spend.params_)}
    return json.dumps({
        "count": {"model": type(model).__name__, "params": dict(model.params_)},
        "spend": spend_doc, "horizon": horizon, "time_unit": time_unit,
        "annual_discount_rate": annual_discount_rate,
    })


def save_model_params(store: Any, document: str, *, snapshot_date: dt.date, model: str, run_id: str) -> None:
    """Replace the saved parameters of ``model`` at ``snapshot_date`` (one statement each;
    no-op on a store without the ``model_params`` table)."""
    with store.transaction() as con:
        present = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'model_params'").fetchone()[0]
        if not present:
            return
        con.execute("DELETE FROM model_params WHERE snapshot_date = ? AND model = ?", [snapshot_date, model])
        con.execute("INSERT INTO model_params VALUES (?, ?, ?, ?, ?)",
                    [snapshot_date, model, document, run_id, dt.datetime.now(dt.UTC).replace(tzinfo=None)])


def load_model_params(con: Any, *, snapshot_date: dt.date, model: str) -> dict[str, Any] | None:
    """The fitted models saved for ``snapshot_date``: ``{"count": BTYDModel, "spend": model or
    None, "horizon", "time_unit", "annual_discount_rate"}``; None when nothing was saved.
    ``con`` is a DuckDB connection to the store (or a read-only copy)."""
    present = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'model_params'").fetchone()[0]
    if not present:
        return None
    row = con.execute("SELECT params FROM model_params WHERE snapshot_date = ? AND model = ?",
                      [snapshot_date, model]).fetchone()
    if row is None:
        return None
    return models_from_document(json.loads(row[0]))


def models_from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Fitted model objects from a document of :func:`model_document`."""
    from segflow import models

    count_cls = getattr(models, doc["count"]["model"])
    count = count_cls()
    count.params_ = {k: float(v) for k, v in doc["count"]["params"].items()}
    spend_doc = doc.get("spend")
    spend: GammaGammaModel | ConstantSpendModel | None
    if spend_doc is None:
        spend = None
    elif spend_doc["model"] == "constant":
        spend = ConstantSpendModel(float(spend_doc["expected_spend"]), spend_doc.get("source", "given"))
    else:
        spend = GammaGammaModel()
        spend.params_ = {k: float(v) for k, v in spend_doc["params"].items()}
    return {"count": count, "spend": spend, "horizon": float(doc["horizon"]), "time_unit": doc["time_unit"],
            "annual_discount_rate": float(doc["annual_discount_rate"])}
