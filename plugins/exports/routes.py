import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.core.fields import Timestamp
from mnemogate.plugins.exports import service

router = APIRouter(prefix="/api/export")

Since = Annotated[Timestamp | None, Query(description="from this time (inclusive, ISO 8601 with zone)")]
Until = Annotated[Timestamp | None, Query(description="until this time (exclusive, ISO 8601 with zone)")]
SessionFilter = Annotated[uuid.UUID | None, Query(description="one session")]
ModelFilter = Annotated[str | None, Query(max_length=300, description="model, or provider/model")]


def _selection(
    since: datetime | None, until: datetime | None, session_id: uuid.UUID | None, model: str | None
) -> dict[str, Any]:
    return {
        "since": since,
        "until": until,
        "session_id": str(session_id) if session_id else None,
        "model": model,
    }


@router.get(
    "/csv",
    summary="The request log (or sessions) as CSV, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_csv(
    principal: PrincipalDep,
    registry: RegistryDep,
    what: Annotated[Literal["requests", "sessions"], Query(description="which table")] = "requests",
    since: Since = None,
    until: Until = None,
    session_id: SessionFilter = None,
    model: ModelFilter = None,
) -> StreamingResponse:
    sessions = service.source(registry)
    selection = _selection(since, until, session_id, model)
    rows = (sessions.iter_requests if what == "requests" else sessions.iter_sessions)(
        principal.tenant, **selection
    )
    return StreamingResponse(
        service.csv_stream(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="mnemogate-{what}.csv"'},
    )


@router.get(
    "/json",
    summary="Sessions and the request log as one JSON document, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def export_json(
    principal: PrincipalDep,
    registry: RegistryDep,
    since: Since = None,
    until: Until = None,
    session_id: SessionFilter = None,
    model: ModelFilter = None,
) -> StreamingResponse:
    sessions = service.source(registry)
    selection = _selection(since, until, session_id, model)
    return StreamingResponse(
        service.json_stream(
            sessions.iter_sessions(principal.tenant, **selection),
            sessions.iter_requests(principal.tenant, **selection),
            selection,
        ),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="mnemogate-export.json"'},
    )
