import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from mnemogate.core.app import first_result
from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.core.fields import Timestamp
from mnemogate.plugins.visualization import dashboard
from mnemogate.plugins.visualization.models import (
    MEMORY_TYPES,
    Bucket,
    Graph,
    MemoryTypeName,
    Projection,
    Selection,
    Series,
    Trace,
    TraceRequest,
    Usage,
)
from mnemogate.plugins.visualization.service import SERVICE, VizService


def get_viz(registry: RegistryDep) -> VizService:
    return registry.services[SERVICE]


Viz = Annotated[VizService, Depends(get_viz)]
Kinds = Annotated[list[MemoryTypeName] | None, Query(max_length=3, description="memory types (default: all)")]
UserFilter = Annotated[str | None, Query(max_length=128, description="one user's memories")]
SessionFilter = Annotated[
    str | None, Query(max_length=128, description="one session's episodes (entities and skills have none)")
]
Since = Annotated[Timestamp | None, Query(description="from this time (inclusive, ISO 8601 with zone)")]
Until = Annotated[Timestamp | None, Query(description="until this time (exclusive, ISO 8601 with zone)")]
BucketParam = Annotated[Bucket, Query(description="width of the time buckets")]


def selection(
    registry: RegistryDep,
    kinds: Kinds = None,
    user_id: UserFilter = None,
    session_id: SessionFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=50_000, description="memories shown at most (the newest)")] = 2000,
) -> Selection:
    cap = registry.plugin_settings(SERVICE).max_nodes
    return Selection(
        kinds=tuple(dict.fromkeys(kinds)) if kinds else MEMORY_TYPES,
        user_id=user_id,
        session_id=session_id,
        since=since,
        until=until,
        limit=min(limit, cap),
    )


Selected = Annotated[Selection, Depends(selection)]

reads = APIRouter(prefix="/api/v1/viz")
writes = APIRouter(prefix="/api/v1/viz")
pages = APIRouter()


@reads.get("/graph", summary="The memory graph with 3D layout positions (cached until the next write)")
async def graph(principal: PrincipalDep, viz: Viz, selected: Selected) -> Graph:
    return await viz.graph(principal.tenant, selected)


@reads.get("/embeddings", summary="The memories' embedding vectors projected to 3D (PCA)")
async def embeddings(principal: PrincipalDep, viz: Viz, selected: Selected) -> Projection:
    return await viz.embeddings(principal.tenant, selected)


@reads.get("/series", summary="Learning over time: memory counts, recalls, strength, Hebbian changes")
async def series(
    principal: PrincipalDep, viz: Viz, selected: Selected, bucket: BucketParam = "hour"
) -> Series:
    return await viz.series(principal.tenant, selected, bucket)


@reads.get("/usage", summary="Gateway usage over time: requests, tokens, cost per model, recent requests")
async def usage(
    principal: PrincipalDep,
    viz: Viz,
    bucket: BucketParam = "hour",
    since: Since = None,
    until: Until = None,
    session_id: Annotated[uuid.UUID | None, Query(description="one gateway session")] = None,
) -> Usage:
    return await viz.usage(principal.tenant, bucket, since, until, str(session_id) if session_id else None)


@writes.post(
    "/activation-trace",
    summary="Run spreading activation and trace it hop by hop (learning off unless learning_rate > 0)",
)
async def activation_trace(body: TraceRequest, principal: PrincipalDep, viz: Viz) -> Trace:
    return await viz.trace(principal.tenant, body)


@pages.get("/dashboard", include_in_schema=False, response_class=HTMLResponse)
async def dashboard_page(request: Request, registry: RegistryDep) -> HTMLResponse:
    keys_required = bool(await first_result(registry.host, "requires_api_keys", app=request.app))
    return HTMLResponse(dashboard.index_html(keys_required), headers=dashboard.PAGE_HEADERS)


@pages.get("/dashboard/assets/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> FileResponse:
    return dashboard.asset(name)
