"""Real-time scoring: ``POST /api/v1/score`` (analysts; audited)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from segflow.errors import SegflowError
from segflow.server._auth import CsrfChecked, audit
from segflow.server._tokens import role_at_least
from segflow.server.deps import GenerationDep, ProjectDep

router = APIRouter(prefix="/api/v1", tags=["score"])


class TransactionIn(BaseModel):
    ts: dt.datetime
    amount: float
    quantity: float | None = None
    category: str | None = None
    channel: str | None = None
    promo_code: str | None = None
    is_return: bool = False
    transaction_id: str | None = None


class ScoreIn(BaseModel):
    customer_id: str = Field(default="(scored)", max_length=200)
    transactions: list[TransactionIn] = Field(min_length=1, max_length=10_000)
    attributes: dict[str, Any] = Field(default_factory=dict, description="customers columns, e.g. region")
    as_of: dt.date | None = Field(default=None, description="A stored snapshot date (default: the latest).")


class ScoreOut(BaseModel):
    customer_id: str
    snapshot_date: dt.date
    segments: dict[str, str | None]
    scores: dict[str, float] | None
    features: dict[str, Any]
    notes: list[str]


def scorer_for(project: Any, gen: Any, as_of: dt.date | None) -> Any:
    """The scorer of a stored features snapshot (default: the latest), built once per copy."""
    from segflow.server._scorer import Scorer

    dates = gen.cached(("features_dates",), lambda: [r[0] for r in project.store.raw.execute(
        "SELECT DISTINCT snapshot_date FROM customer_features ORDER BY 1").fetchall()])
    if not dates:
        raise HTTPException(status_code=409, detail="no stored features: run `segflow run` first")
    snapshot = as_of or dates[-1]
    if snapshot not in dates:
        raise HTTPException(status_code=404, detail=f"no stored features at {snapshot}; stored: {', '.join(map(str, dates))}")
    return gen.cached(("scorer", snapshot), lambda: Scorer(project, snapshot))


@router.post("/score", response_model=ScoreOut)
def score(request: Request, body: ScoreIn, project: ProjectDep, gen: GenerationDep, who: CsrfChecked) -> ScoreOut:
    """Segment of each saved scheme and the model scores (P(alive), expected purchases,
    52-week CLV) for one customer's transactions, as of a stored snapshot."""
    if not role_at_least(who.role, "analyst"):
        raise HTTPException(status_code=403, detail=f"this needs the analyst role or above; token {who.token_id} has the {who.role} role")
    try:
        scorer = scorer_for(project, gen, body.as_of)
        snapshot = scorer.snapshot
        rows = [t.model_dump() for t in body.transactions]
        table = pa.table({
            "transaction_id": pa.array([r["transaction_id"] or f"t{i}" for i, r in enumerate(rows)], pa.string()),
            "customer_id": pa.array([body.customer_id] * len(rows), pa.string()),
            "ts": pa.array([r["ts"].replace(tzinfo=None) for r in rows], pa.timestamp("us")),
            "amount": pa.array([r["amount"] for r in rows], pa.float64()),
            "quantity": pa.array([r["quantity"] for r in rows], pa.float64()),
            "category": pa.array([r["category"] for r in rows], pa.string()),
            "channel": pa.array([r["channel"] for r in rows], pa.string()),
            "promo_code": pa.array([r["promo_code"] for r in rows], pa.string()),
            "is_return": pa.array([r["is_return"] for r in rows], pa.bool_()),
        })
        result = scorer.score(body.customer_id, table, body.attributes)
    except SegflowError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    audit(request, who, "score", {"customer_id": body.customer_id, "transactions": len(rows)})
    features = {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in result["features"].items()}
    return ScoreOut(customer_id=body.customer_id, snapshot_date=snapshot, segments=result["segments"],
                    scores=result["scores"], features=features, notes=scorer.notes)
