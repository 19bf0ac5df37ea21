"""The JSON API under ``/api/v1``: one function per resource, shared with the pages.

Roles: viewers read aggregates; analysts also customer-level data (every such read is in
the audit log) and CSV downloads of it; admins also tokens and the audit log. Lists take
``limit`` / ``offset`` and answer ``{"data", "count", "total", "meta"}``; ``format=csv``
downloads the same rows (formula cells neutralised).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from segflow._disclosure import (
    REVENUE_12M_DAYS,
    min_customers,
    scheme_known_rows,
    withhold_small_cells,
)
from segflow.exports._pii_text import mask_personal_text
from segflow.report._queries import quarantine_reasons, reconciliation
from segflow.server import _audit, _views
from segflow.server._auth import Admin, Analyst, Viewer, audit
from segflow.server._day import Day
from segflow.server._pseudonyms import (
    audited_id,
    pseudonymise_frame,
    pseudonymise_rows,
    resolve,
    server_key,
)
from segflow.server._security import attachment, csv_bytes, protect, protect_rows
from segflow.server._tokens import role_at_least
from segflow.server.deps import CurrentGenerationDep, GenerationDep, ProjectDep, leased_project
from segflow.server.schemas import HealthPublic, LivePublic, RecordsPublic, WhoAmIPublic

router = APIRouter(prefix="/api/v1", tags=["api"])

Limit = Annotated[int, Query(ge=1, le=10_000, description="Rows per page.")]
#: Largest ``offset`` (beyond 2^63 - 1 DuckDB's OFFSET overflowed: an HTTP 500).
MAX_OFFSET = 10**12
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]
Format = Annotated[Literal["json", "csv"], Query(description="json, or csv to download the rows.")]
Pii = Annotated[
    Literal["default", "include", "full"],
    Query(description="Personal data: masked in JSON and hashed in CSV (as email_sha256, ...) by default; "
                      "'include' (the CLI's --pii include) shows it (audited); 'full' is the same, "
                      "kept for compatibility."),
]
#: The ``pii`` values that show personal data in clear (recorded as ``"full"``).
CLEAR = ("include", "full")


def table_response(frame: pd.DataFrame, *, fmt: str, filename: str, meta: dict[str, Any],
                   limit: int | None = None, offset: int = 0, total: int | None = None,
                   paged: bool = False) -> RecordsPublic | Response:
    """A table as JSON records (one page) or as a CSV download (every row of the query).
    ``paged``: ``frame`` is the page already (the query applied ``limit`` and ``offset``)."""
    if fmt == "csv":
        return Response(
            csv_bytes(frame), media_type="text/csv; charset=utf-8",
            headers={"content-disposition": attachment(f"{filename}.csv")},
        )
    total = len(frame) if total is None else total
    shown = _views.page(frame, limit, offset) if limit is not None and not paged else frame
    data = _views.records(shown)
    return RecordsPublic(data=data, count=len(data), total=total, meta={**meta, "limit": limit, "offset": offset})


@router.get("/health", response_model=HealthPublic)
def health(project: ProjectDep, gen: GenerationDep, who: Viewer) -> HealthPublic:
    """Liveness, versions, and which copy of the store is served."""
    from segflow import __version__

    return HealthPublic(
        status="ok",
        segflow_version=__version__,
        schema_version=project.store.schema_version,
        project=project.settings.project.name,
        store_copy=gen.number,
        warm=gen.warmed.is_set(),
    )


@router.get("/live", response_model=LivePublic)
def live(gen: CurrentGenerationDep) -> LivePublic:
    """Liveness for a load balancer or an orchestrator: no login, and nothing about the
    project, its data or its versions (``/health`` gives those to a viewer)."""
    return LivePublic(status="ok", warm=gen.warmed.is_set())


@router.get("/whoami", response_model=WhoAmIPublic)
def whoami(who: Viewer) -> WhoAmIPublic:
    """The caller's token id and role (and the CSRF token of a browser session)."""
    return WhoAmIPublic(token_id=who.token_id, role=who.role, name=who.name,
                        csrf_token=who.session.csrf if who.session else None)


@router.get("/schemes", response_model=RecordsPublic)
def list_schemes(project: ProjectDep, gen: GenerationDep, who: Viewer, limit: Limit = 100, offset: Offset = 0) -> Any:
    """Schemes with stored assignments and their snapshot range."""
    frame = pd.DataFrame(_views.schemes(project, gen), columns=["scheme", "snapshots", "first_snapshot", "last_snapshot"])
    return table_response(frame, fmt="json", filename="schemes", meta={}, limit=limit, offset=offset)


@router.get("/snapshots/{scheme:path}", response_model=RecordsPublic)
def list_snapshots(project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str,
                   limit: Limit = 100, offset: Offset = 0) -> Any:
    """Snapshot dates of a scheme, oldest first."""
    frame = pd.DataFrame({"snapshot_date": _views.snapshots(project, gen, scheme)})
    return table_response(frame, fmt="json", filename="snapshots", meta={"scheme": scheme}, limit=limit, offset=offset)


@router.get("/segments/{scheme:path}", response_model=RecordsPublic)
def segments(project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str, snapshot: Day | None = None,
             limit: Limit = 100, offset: Offset = 0, format: Format = "json") -> Any:
    """Customers, share and 12-month revenue per segment at a snapshot (default: latest),
    with the change in customers since the previous snapshot; a viewer gets no revenue of a
    segment below ``[server] min_cell_customers`` (``withheld`` says so), nor of the next
    smallest while the withheld ones hold fewer customers together (the total less the others
    would give them away)."""
    frame, snapshot = _views.segment_sizes(project, gen, scheme, snapshot)
    frame = withhold_small_cells(frame, who.role, min_customers(project), complement="revenue_12m",
                                 known=scheme_known_rows(project, scheme, frame, REVENUE_12M_DAYS))
    return table_response(frame, fmt=format, filename=f"segments-{scheme}-{snapshot}",
                          meta={"scheme": scheme, "snapshot": snapshot}, limit=limit, offset=offset)


# before /migration/{scheme:path}: that path would take 'rfm/customers' as a scheme name
@router.get("/migration/{scheme:path}/customers", response_model=RecordsPublic)
def migration_customers(request: Request, project: ProjectDep, gen: GenerationDep, who: Analyst, scheme: str,
                        from_segment: str, to_segment: str, from_date: Day | None = None,
                        to_date: Day | None = None, limit: Limit = 100, offset: Offset = 0, format: Format = "json",
                        pii: Pii = "default") -> Any:
    """The customers of one cell of the transition matrix between two snapshots (default:
    the last two, as the matrix) (analysts; audited); ids that are e-mails or phone numbers
    as their pseudonymous keys unless ``pii=include``."""
    frame, from_date, to_date = _views.cell_customers(project, gen, scheme, from_date, to_date, from_segment, to_segment)
    how = "full" if pii in CLEAR else ("hash" if format == "csv" else "mask")
    if how != "full":
        frame = pseudonymise_frame(frame, server_key(request.app.state))
    audit(request, who, "export" if format == "csv" else "read_customers", {"rows": len(frame), "pii": how})
    return table_response(
        frame, fmt=format, filename=f"migration-{scheme}-{from_date}-{to_date}-customers",
        meta={"scheme": scheme, "from_date": from_date, "to_date": to_date,
              "from_segment": from_segment, "to_segment": to_segment},
        limit=limit, offset=offset,
    )


@router.get("/migration/{scheme:path}", response_model=RecordsPublic)
def migration(project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str,
              from_date: Day | None = None, to_date: Day | None = None,
              from_segment: str | None = None, to_segment: str | None = None,
              limit: Limit = 1000, offset: Offset = 0, format: Format = "json") -> Any:
    """The transition matrix between two snapshots (default: the last two), long form; a
    viewer gets no revenue of a cell below ``[server] min_cell_customers``, nor of the next
    smallest while the withheld cells hold fewer customers (the matrix's total revenue is the
    change of the segments' total between the snapshots)."""
    matrix = _views.transitions(project, gen, scheme, from_date, to_date)
    cells = matrix.to_pandas()
    frame = withhold_small_cells(cells, who.role, min_customers(project), complement="revenue",
                                 known=scheme_known_rows(project, scheme, cells,
                                                           (matrix.to_date - matrix.from_date).days))
    if from_segment:
        frame = frame[frame["from_segment"] == from_segment]
    if to_segment:
        frame = frame[frame["to_segment"] == to_segment]
    return table_response(
        frame, fmt=format, filename=f"migration-{scheme}-{matrix.from_date}-{matrix.to_date}",
        meta={"scheme": scheme, "from_date": matrix.from_date, "to_date": matrix.to_date},
        limit=limit, offset=offset,
    )


@router.get("/customers", response_model=RecordsPublic)
def customers(request: Request, project: ProjectDep, gen: GenerationDep, who: Analyst, q: str | None = None,
              scheme: str | None = None, segment: str | None = None, snapshot: Day | None = None,
              limit: Limit = 100, offset: Offset = 0, format: Format = "json", pii: Pii = "default") -> Any:
    """Customer search by id prefix, e-mail or name, and/or by segment of ``scheme`` at
    ``snapshot`` (default: the latest; ``segment`` and ``snapshot`` need ``scheme``, an
    unknown one is a 404 as for the audiences) (analysts; audited). ``format=csv`` downloads
    every match, personal data hashed under ``<column>_sha256`` unless ``pii=include`` (or ``full``)."""
    snapshot = _views.segment_snapshot(project, gen, scheme, segment, snapshot)
    key = server_key(request.app.state)
    found = resolve(project, gen, key, q.strip()) if q else q  # a key (pid-...) finds its customer
    if format == "csv":
        frame, total = _views.search_customers(project, found, scheme, segment, snapshot, 10_000_000, 0, gen)
    else:
        frame, total = _views.search_customers(project, found, scheme, segment, snapshot, limit, offset, gen)
    how = "full" if pii in CLEAR else ("hash" if format == "csv" else "mask")
    audit(request, who, "export" if format == "csv" else "read_customers",
          {"rows": len(frame), "pii": how, "q": q, "scheme": scheme, "segment": segment,
           "snapshot": None if snapshot is None else str(snapshot)})
    return table_response(protect(frame, how, key), fmt=format, filename="customers",
                          meta={"q": q, "scheme": scheme, "segment": segment, "snapshot": snapshot, "pii": how},
                          limit=None if format == "csv" else limit, offset=offset, total=total,
                          paged=True)


@router.get("/customers/{customer_id:path}", response_model=RecordsPublic)
async def customer(request: Request, who: Analyst, customer_id: str, pii: Pii = "default") -> Any:
    """A customer's segment at every snapshot of every scheme (``data``), with attributes,
    timeline, scores and latest features in ``meta`` (analysts; audited).

    Served on the event loop from the copy's memory-mapped lookup files (no store
    connection; :mod:`segflow.server._lookup`); a copy without them is read through a pooled
    connection. An id given as its pseudonymous key (``pid-...``, as masked answers show an
    id that is an e-mail or phone number) is looked up as that id."""
    key, asked = server_key(request.app.state), customer_id
    if customer_id.startswith("pid-"):
        async with leased_project(request) as project:
            customer_id = await run_in_threadpool(resolve, project, request.state.generation, key, customer_id)
    parts = _views.customer_rows_indexed(request.app.state.replica.current, customer_id)
    if parts is None:
        async with leased_project(request) as project:
            parts = await run_in_threadpool(_views.customer_rows, project, customer_id, request.state.generation)
    how = "full" if pii in CLEAR else "mask"
    shown = audited_id(asked, key)  # as asked (a key stays one), an address as its key
    audit(request, who, "read_customer", {"customer_id": shown, "pii": how}, path=f"/api/v1/customers/{shown}")
    return Response(customer_answer(parts, customer_id, how, key), media_type="application/json")


def customer_answer(parts: dict[str, _views.Rows], customer_id: str, how: str, key: bytes | None = None) -> bytes:
    """The JSON answer of ``GET /api/v1/customers/{id}`` from :func:`_views.customer_rows`
    (``how``: ``mask`` or ``full`` for the personal data; ``key``: the project's secret, so
    that under ``mask`` an id that is an e-mail or phone number shows as its pseudonymous
    key, in ``meta`` and in every part's rows)."""
    history = parts["history"][1]
    data = _views.history_records(history)
    attributes = _views.fast_records(*protect_rows(*parts["attributes"], how, key))
    features_rows, scores_rows = parts["features"], parts["scores"]
    if how != "full" and key is not None:
        customer_id = pseudonymise_rows(["customer_id"], [(customer_id,)], key)[0][0]
        features_rows = (features_rows[0], pseudonymise_rows(*features_rows, key))
        scores_rows = (scores_rows[0], pseudonymise_rows(*scores_rows, key))
    features = _views.fast_records(*features_rows)
    body = {"data": data, "count": len(data), "total": len(data), "meta": {
        "customer_id": customer_id,
        "pii": how,
        "attributes": attributes[0] if attributes else {},
        "timeline": _views.fast_timeline(history),
        "scores": _views.fast_records(*scores_rows),
        "features": features[0] if features else {},
    }}
    return orjson.dumps(body, default=str)


@router.get("/quality", response_model=RecordsPublic)
def quality(request: Request, project: ProjectDep, who: Viewer, limit: Limit = 1000, offset: Offset = 0,
            pii: Pii = "default") -> Any:
    """Reconciliation per loaded file; quarantine reasons in ``meta``: rows per source and
    rule, and for analysts and admins an example reason (it quotes the row's values, e.g. a
    customer id: customer-level data a viewer does not see), with the e-mail addresses and
    phone numbers in it masked unless ``pii=include`` (audited)."""
    frame = quarantine_reasons(project.store)
    if not role_at_least(who.role, "analyst"):
        frame = frame.drop(columns=["example"])
    elif pii in CLEAR:
        audit(request, who, "read_customers", {"rows": len(frame), "pii": "full", "what": "quarantine examples"})
    else:
        frame = frame.assign(example=[mask_personal_text(x) for x in frame["example"]])
    reasons = _views.records(frame)
    return table_response(reconciliation(project.store), fmt="json", filename="quality",
                          meta={"quarantine": reasons}, limit=limit, offset=offset)


@router.get("/tokens", response_model=RecordsPublic)
def tokens(request: Request, who: Admin, limit: Limit = 100, offset: Offset = 0) -> Any:
    """API tokens (never their secrets or hashes); admins only. Create and revoke them with
    ``segflow tokens``."""
    newest = request.app.state.token_book.tokens(request.app.state.replica.current)  # those the server accepts
    rows = [t.public() for t in sorted(newest.values(), key=lambda t: (t.created_at, t.token_id))]
    return table_response(pd.DataFrame(rows), fmt="json", filename="tokens", meta={}, limit=limit, offset=offset)


@router.get("/audit", response_model=RecordsPublic)
def audit_log(request: Request, project: ProjectDep, who: Admin, action: str | None = None,
              token_id: str | None = None, limit: Limit = 100, offset: Offset = 0) -> Any:
    """Who read customer-level data and who exported, newest first; admins only."""
    events = _audit.read_events(request.app.state.replica.work_dir, project.store.raw, limit=limit,
                                offset=offset, action=action, token_id=token_id)
    return RecordsPublic(data=events, count=len(events), total=None,
                         meta={"action": action, "token_id": token_id, "limit": limit, "offset": offset})
