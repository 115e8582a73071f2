"""The 11 compaction routes. Session ids in paths use the uuid converter, so ``stats`` and
``config/ui`` can never be taken for a session."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.pagination import Page
from mnemogate.plugins.compaction.models import (
    AutoStatus,
    ChartPoint,
    CompactRequest,
    CompactResult,
    ConfigUI,
    Preview,
    Record,
    Reserved,
    Simulation,
    SimulationResult,
    Stats,
    ToggleAuto,
)
from mnemogate.plugins.compaction.service import SERVICE, CompactionService, chart_svg


async def get_compaction(registry: RegistryDep) -> CompactionService:
    return registry.services[SERVICE]


Compaction = Annotated[CompactionService, Depends(get_compaction)]
StrategyName = Annotated[str | None, Query(max_length=64, description="default: the configured strategy")]

write_router = APIRouter(prefix="/api/compaction")
read_router = APIRouter(prefix="/api/compaction")


@read_router.get("/stats", summary="Compactions of the caller's tenant: count, tokens saved, strategies")
async def tenant_stats(principal: PrincipalDep, compaction: Compaction) -> Stats:
    return await compaction.stats(principal.tenant)


@read_router.get(
    "/config/ui", summary="Settings as a JSON schema, their values and the strategies (for a form)"
)
async def config_ui(compaction: Compaction) -> ConfigUI:
    return compaction.config_ui()


@write_router.post("/{session_id:uuid}", summary="Compact messages now (recorded in the session's history)")
async def compact_now(
    session_id: uuid.UUID, body: CompactRequest, principal: PrincipalDep, compaction: Compaction
) -> CompactResult:
    return await compaction.compact_now(
        principal.tenant, str(session_id), body.messages, body.strategy, body.budget
    )


@read_router.get("/{session_id:uuid}/stats", summary="Compactions of one session")
async def session_stats(session_id: uuid.UUID, principal: PrincipalDep, compaction: Compaction) -> Stats:
    return await compaction.stats(principal.tenant, str(session_id))


@read_router.get("/{session_id:uuid}/history", summary="The session's compactions, newest first")
async def history(
    session_id: uuid.UUID,
    principal: PrincipalDep,
    compaction: Compaction,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Page[Record]:
    return await compaction.history(principal.tenant, str(session_id), limit, cursor)


@read_router.get(
    "/{session_id:uuid}/history-chart",
    summary="Tokens before and after each compaction: an SVG chart, or the series with format=json",
    response_model=None,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def history_chart(
    session_id: uuid.UUID,
    principal: PrincipalDep,
    compaction: Compaction,
    format: Annotated[Literal["svg", "json"], Query(description="svg (default) or json")] = "svg",
) -> Response | list[ChartPoint]:
    points = await compaction.series(principal.tenant, str(session_id))
    if format == "json":
        return points
    return Response(chart_svg(points, f"compactions of session {session_id}"), media_type="image/svg+xml")


@read_router.get("/{session_id:uuid}/preview", summary="Dry run on the session's last request: what would go")
async def preview(
    session_id: uuid.UUID, principal: PrincipalDep, compaction: Compaction, strategy: StrategyName = None
) -> Preview:
    return await compaction.preview(principal.tenant, str(session_id), strategy)


@write_router.post(
    "/{session_id:uuid}/reserved", summary="Set the tokens kept free for reply, summary and margin"
)
async def reserved(
    session_id: uuid.UUID, body: Reserved, principal: PrincipalDep, compaction: Compaction
) -> AutoStatus:
    return await compaction.set_reserved(principal.tenant, str(session_id), body.reserved_tokens)


@write_router.post(
    "/{session_id:uuid}/simulate",
    summary="Replay the session's requests under other settings: triggers, savings",
)
async def simulate(
    session_id: uuid.UUID, body: Simulation, principal: PrincipalDep, compaction: Compaction
) -> SimulationResult:
    return await compaction.simulate(principal.tenant, str(session_id), body)


@write_router.post(
    "/{session_id:uuid}/toggle-auto", summary="Switch auto compaction on or off for the session"
)
async def toggle_auto(
    session_id: uuid.UUID, body: ToggleAuto, principal: PrincipalDep, compaction: Compaction
) -> AutoStatus:
    return await compaction.toggle_auto(principal.tenant, str(session_id), body.enabled)


@read_router.get(
    "/{session_id:uuid}/auto-status", summary="Auto mode, budget and last compaction of the session"
)
async def auto_status(session_id: uuid.UUID, principal: PrincipalDep, compaction: Compaction) -> AutoStatus:
    return await compaction.auto_status(principal.tenant, str(session_id))
