from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.fields import Timestamp
from mnemogate.plugins.cline.models import ClineStatus, ImportRequest, ImportResult, UsagePage
from mnemogate.plugins.cline.service import SERVICE, ClineService


async def get_cline(registry: RegistryDep) -> ClineService:
    return registry.services[SERVICE]


Cline = Annotated[ClineService, Depends(get_cline)]

reads = APIRouter(prefix="/api/cline")
admin = APIRouter(prefix="/api/cline")


@reads.get("/status", summary="Cline's data directory found, tasks seen, tasks imported, last import")
async def status(principal: PrincipalDep, cline: Cline) -> ClineStatus:
    return await cline.status(principal.tenant)


@reads.get("/usage", summary="Tokens, cache reads and writes and cost of imported Cline tasks, grouped")
async def usage(
    principal: PrincipalDep,
    cline: Cline,
    group_by: Annotated[
        Literal["task", "day", "model"], Query(description="one row per task, day or model")
    ] = "day",
    since: Annotated[Timestamp | None, Query(description="requests from this time (inclusive)")] = None,
    until: Annotated[Timestamp | None, Query(description="requests before this time")] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> UsagePage:
    return await cline.usage(principal.tenant, group_by, since=since, until=until, limit=limit, cursor=cursor)


@admin.post(
    "/import",
    summary="Import Cline's tasks as sessions and episodes (again: only changed tasks; bad files reported)",
    responses={404: {"description": "Cline's data directory was not found"}},
)
async def import_tasks(
    principal: PrincipalDep, cline: Cline, body: ImportRequest | None = None
) -> ImportResult:
    return await cline.import_tasks(principal.tenant, body or ImportRequest())
