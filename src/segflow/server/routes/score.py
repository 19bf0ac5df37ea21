"""Real-time scoring: ``POST /api/v1/score`` (analysts; audited).

The body is validated strictly: an unknown field, a date that is not ISO 8601, a timestamp
with a time zone, or an unknown attribute answers 422 naming the field (``transactions.3.ts:
...``). The scorer of the copy is built once in the background when a copy of the store is
swapped in (see :mod:`segflow.server._scorer`); requests then run plain Python only.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from segflow.errors import SegflowError
from segflow.features._attributes import ATTRIBUTE_COLUMNS
from segflow.server._auth import CsrfChecked, audit, refuse_below
from segflow.server._day import Day
from segflow.sources._validate import MAX_ABS_NUMBER

router = APIRouter(prefix="/api/v1", tags=["score"])

#: Attributes a scoring request may carry (the customers columns features read).
ATTRIBUTES = ("created_at", *ATTRIBUTE_COLUMNS)
#: Largest body of a scoring request (413 beyond). The longest lists ScoreIn accepts take
#: about 15 MiB at 200 bytes an item; before, any body was read whole into memory.
MAX_BODY = 32 * 1024 * 1024


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        raise ValueError("give local time without a time zone offset, as the store holds it")
    return value



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransactionIn(_Strict):
    ts: dt.datetime = Field(description="Time of the line, ISO 8601 (YYYY-MM-DDTHH:MM:SS), no time zone.")
    # the ingest's bound (sources._validate.MAX_ABS_NUMBER): a larger amount is quarantined there
    amount: float = Field(allow_inf_nan=False, gt=-MAX_ABS_NUMBER, lt=MAX_ABS_NUMBER,
                          description="Line amount; negative for a return; magnitude below 1e20.")
    quantity: float | None = Field(default=None, allow_inf_nan=False, gt=-MAX_ABS_NUMBER,
                                   lt=MAX_ABS_NUMBER)
    category: str | None = None
    channel: str | None = None
    promo_code: str | None = None
    is_return: bool = False
    transaction_id: str | None = Field(default=None, description="Order id; lines without one: one order per timestamp.")
    product_id: str | None = None

    _ts = field_validator("ts")(_naive)


class EventIn(_Strict):
    ts: dt.datetime
    event_type: str
    session_id: str | None = None

    _ts = field_validator("ts")(_naive)


class SurveyAnswerIn(_Strict):
    ts: dt.datetime
    question: str
    answer: str

    _ts = field_validator("ts")(_naive)


class ExposureIn(_Strict):
    ts: dt.datetime
    campaign_id: str
    exposure_type: str | None = Field(default=None, description="send, open, click, ...")
    arm: str | None = Field(default=None, description="treatment or control")

    _ts = field_validator("ts")(_naive)


class ScoreIn(_Strict):
    customer_id: str = Field(default="(scored)", max_length=200)
    transactions: list[TransactionIn] = Field(min_length=1, max_length=10_000)
    events: list[EventIn] = Field(default_factory=list, max_length=50_000, description="Web/app events (optional).")
    campaign_exposures: list[ExposureIn] = Field(default_factory=list, max_length=10_000)
    survey_responses: list[SurveyAnswerIn] = Field(default_factory=list, max_length=1_000)
    attributes: dict[str, Any] = Field(
        default_factory=dict, description=f"Customer record: {', '.join(ATTRIBUTES)} (created_at: ISO 8601).")
    as_of: Day | None = Field(default=None, description="A stored snapshot date (default: the latest).")

    @field_validator("attributes")
    @classmethod
    def _known_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(ATTRIBUTES)}")
        nested = sorted(k for k, v in value.items() if not (v is None or isinstance(v, str | int | float)))
        if nested:  # a customer record holds text, numbers and dates (as text) only
            raise ValueError(f"attribute(s) {', '.join(nested)} must be text, a number or null")
        out = dict(value)
        created = out.get("created_at")
        if created is not None:
            try:
                parsed = dt.datetime.fromisoformat(str(created))
            except ValueError:
                raise ValueError(f"created_at {created!r} is not an ISO 8601 date or time") from None
            out["created_at"] = _naive(parsed)
        return out


class ScoreOut(BaseModel):
    customer_id: str
    snapshot_date: dt.date
    segments: dict[str, str | None]
    scores: dict[str, float | None] | None
    features: dict[str, Any]
    notes: list[str]


def feature_dates(project: Any, gen: Any) -> list[dt.date]:
    return gen.cached(("features_dates",), lambda: [r[0] for r in project.store.raw.execute(
        "SELECT DISTINCT snapshot_date FROM customer_features ORDER BY 1").fetchall()])


def scorer_for(project: Any, gen: Any, as_of: dt.date | None) -> Any:
    """The scorer of a stored features snapshot (default: the latest), built once per copy."""
    from segflow.server._scorer import Scorer

    dates = feature_dates(project, gen)
    if not dates:
        raise HTTPException(status_code=409, detail="no stored features: run `segflow run` first")
    snapshot = as_of or dates[-1]
    if snapshot not in dates:
        raise HTTPException(status_code=404, detail=f"no stored features at {snapshot}; stored: {', '.join(map(str, dates))}")
    return gen.cached(("scorer", snapshot), lambda: Scorer(project, snapshot))


def _ready_scorer(gen: Any, as_of: dt.date | None) -> Any:
    """The scorer from the copy's cache without touching the store, or None when it still has
    to be built (or the snapshot checked): then :func:`scorer_for` runs on a pooled connection."""
    dates = gen.peek(("features_dates",))
    if not dates:
        return None
    snapshot = as_of or dates[-1]
    return gen.peek(("scorer", snapshot)) if snapshot in dates else None


def _scorer_on_store(replica: Any, as_of: dt.date | None) -> tuple[Any, Any]:
    with replica.lease() as (gen, project):
        return gen, scorer_for(project, gen, as_of)


def _parse(raw: bytes) -> ScoreIn:
    """The body, parsed and validated in one pass (pydantic's JSON parser); errors as FastAPI's."""
    try:
        return ScoreIn.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def read_body(request: Request) -> bytes:
    """The request's body, refused with 413 beyond :data:`MAX_BODY` bytes (by its
    Content-Length before reading, or while reading a body sent without one), and with 415
    when it is a form (the CSRF check of a browser session may have read it already: reading
    it again raised "Stream consumed", an HTTP 500)."""
    if request.headers.get("content-type", "").lower().startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        raise HTTPException(status_code=415, detail="the body must be JSON (Content-Type: application/json), "
                            "not a form; send the CSRF token in the X-CSRF-Token header")
    too_big = HTTPException(status_code=413, detail=f"the body is larger than {MAX_BODY // 2**20} MiB")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _finite(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Non-finite floats as null (what pydantic's JSON did)."""
    if values is None:
        return None
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its ``$defs`` references replaced by the definitions (for OpenAPI)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


_SCHEMA = ScoreIn.model_json_schema()
_BODY = {"required": True, "content": {"application/json": {"schema": _inline(_SCHEMA, _SCHEMA.get("$defs", {}))}}}


@router.post("/score", response_model=ScoreOut, openapi_extra={"requestBody": _BODY})
async def score(request: Request, who: CsrfChecked) -> Response:
    """Segment of each saved scheme and the model scores (P(alive), expected purchases,
    52-week CLV) for one customer's posted history (a :class:`ScoreIn` JSON body), as of a
    stored snapshot.

    The hot path runs on the event loop without a store connection: the body is parsed and
    validated once, the scorer of the copy (built once, in the background) is plain Python,
    and the answer is serialised directly (about a millisecond in all, see docs/server.md)."""
    refuse_below(who, "analyst")
    body = _parse(await read_body(request))
    replica = request.app.state.replica
    try:
        gen = replica.current
        scorer = _ready_scorer(gen, body.as_of)
        if scorer is None:  # first request of a copy, or a snapshot not yet checked: needs the store
            gen, scorer = await run_in_threadpool(_scorer_on_store, replica, body.as_of)
        answer, lines = score_answer(scorer, body)
    except SegflowError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    audit(request, who, "score", {"customer_id": body.customer_id, "transactions": lines})
    return Response(answer, media_type="application/json")


def score_answer(scorer: Any, body: ScoreIn) -> tuple[bytes, int]:
    """The JSON answer of ``POST /api/v1/score`` for a validated body, and the number of
    transaction lines scored (for the audit log).

    Raises
    ------
    SegflowError
        When the scorer refuses the history (the route answers 422)."""
    # the validated models carry the attributes of Line, Event, Answer and Exposure (same
    # names and values): read as they are, without a copy per row (70 us a request)
    lines = body.transactions
    result = scorer.score(body.customer_id, lines, body.events, body.survey_responses, body.attributes,
                          body.campaign_exposures)
    out = {"customer_id": body.customer_id, "snapshot_date": scorer.snapshot, "segments": result["segments"],
           "scores": _finite(result["scores"]), "features": _finite(result["features"]), "notes": scorer.notes}
    return orjson.dumps(out, default=_json_default), len(lines)
