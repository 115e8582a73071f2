import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.fields import Timestamp
from mnemogate.core.pagination import Page
from mnemogate.plugins.sessions.models import (
    AutoStatus,
    DeleteResult,
    Diagnostic,
    SessionCreate,
    SessionOut,
    ToggleAuto,
    VacuumResult,
)
from mnemogate.plugins.sessions.service import SERVICE, SessionService


async def get_sessions(registry: RegistryDep) -> SessionService:
    return registry.services[SERVICE]


Sessions = Annotated[SessionService, Depends(get_sessions)]

# Three packs by scope. Session ids in paths use the uuid converter, so /api/sessions/vacuum or
# /diagnostic can never be taken for an id, whatever the mount order.
admin_router = APIRouter(prefix="/api/sessions")
write_router = APIRouter(prefix="/api/sessions")
read_router = APIRouter(prefix="/api/sessions")


@read_router.get("", summary="Sessions of the caller's tenant, newest first, with their totals")
async def list_sessions(
    principal: PrincipalDep, sessions: Sessions, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[SessionOut]:
    return await sessions.list(principal.tenant, limit, cursor)


@read_router.get("/active", summary="The session requests without X-Session-ID go to")
async def active_session(principal: PrincipalDep, sessions: Sessions) -> SessionOut:
    return await sessions.active(principal.tenant)


@read_router.get("/auto-status", summary="Whether auto mode starts new sessions by itself")
async def auto_status(principal: PrincipalDep, sessions: Sessions) -> AutoStatus:
    return sessions.auto_status(principal.tenant)


@read_router.get("/{session_id:uuid}", summary="One session with its totals")
async def get_session(session_id: uuid.UUID, principal: PrincipalDep, sessions: Sessions) -> SessionOut:
    return await sessions.get(principal.tenant, str(session_id))


@write_router.post("", status_code=201, summary="Start a session (and make it active)")
async def create_session(body: SessionCreate, principal: PrincipalDep, sessions: Sessions) -> SessionOut:
    return await sessions.create(principal.tenant, body.name, body.activate)


@write_router.post("/{session_id:uuid}/activate", summary="Make a session the active one")
async def activate_session(session_id: uuid.UUID, principal: PrincipalDep, sessions: Sessions) -> SessionOut:
    return await sessions.activate(principal.tenant, str(session_id))


@write_router.post("/toggle-auto", summary="Switch auto mode on or off (or flip it)")
async def toggle_auto(
    principal: PrincipalDep, sessions: Sessions, body: ToggleAuto | None = None
) -> AutoStatus:
    return await sessions.toggle_auto(principal.tenant, body.enabled if body else None)


@write_router.delete("", summary="Delete sessions (and their log records) by id, by age, or all=true")
async def delete_sessions(
    principal: PrincipalDep,
    sessions: Sessions,
    ids: Annotated[list[uuid.UUID] | None, Query(max_length=1000, description="sessions to delete")] = None,
    before: Annotated[Timestamp | None, Query(description="sessions last used before this time")] = None,
    all: Annotated[bool, Query(description="delete every session of the tenant")] = False,
) -> DeleteResult:
    return await sessions.delete(principal.tenant, [str(i) for i in ids or ()], before, all)


@admin_router.post("/vacuum", summary="Reclaim database space")
async def vacuum(sessions: Sessions) -> VacuumResult:
    return await sessions.vacuum()


@admin_router.get("/diagnostic", summary="Database size, row counts and inconsistencies")
async def diagnostic(principal: PrincipalDep, sessions: Sessions) -> Diagnostic:
    return await sessions.diagnostic(principal.tenant)
