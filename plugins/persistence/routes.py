from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.errors import BadRequest, InvalidInput
from mnemogate.core.pagination import Page
from mnemogate.plugins.persistence.models import (
    Backup,
    Checkpoint,
    ImportResult,
    Restored,
    RestoreRequest,
    Status,
)
from mnemogate.plugins.persistence.service import SERVICE, PersistenceService


async def get_persistence(registry: RegistryDep) -> PersistenceService:
    return registry.services[SERVICE]


Persistence = Annotated[PersistenceService, Depends(get_persistence)]
PREFIX = "/api/v1/persistence"

reads = APIRouter(prefix=PREFIX)
writes = APIRouter(prefix=PREFIX)
admin = APIRouter(prefix=PREFIX)
CONFLICT = {409: {"description": "not possible on this database (PostgreSQL: use pg_dump / pg_restore)"}}


@reads.get("/status", summary="Journal mode, write-ahead log and database size, last checkpoint, integrity")
async def status(persistence: Persistence) -> Status:
    return await persistence.status()


@reads.get("/checkpoints", summary="Checkpoint history, newest first")
async def checkpoints(
    persistence: Persistence, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[Checkpoint]:
    return await persistence.checkpoints(limit, cursor)


@reads.get(
    "/export",
    summary="The caller's memories as JSON lines (a header, then one record per line), streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
async def export(principal: PrincipalDep, persistence: Persistence) -> StreamingResponse:
    return StreamingResponse(
        persistence.export(principal.tenant),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="mnemogate-memories.jsonl"'},
    )


@writes.post(
    "/import",
    summary="Import memories from JSON lines (as export writes them); same ids are updated, not duplicated",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
    responses={422: {"description": "no line held a valid record (details list each line's problem)"}},
)
async def import_memories(
    request: Request, principal: PrincipalDep, persistence: Persistence
) -> ImportResult:
    result = await persistence.import_lines(principal.tenant, request.stream())
    if result.imported:
        return result
    if not result.rejected:
        raise BadRequest("the body holds no records")
    first = result.errors[0]
    raise InvalidInput(
        f"no valid record in {result.rejected} line(s); line {first.line}: {first.message}",
        details=[error.model_dump() for error in result.errors],
    )


@admin.post("/checkpoint", summary="Fold the write-ahead log into the database now", responses=CONFLICT)
async def checkpoint(persistence: Persistence) -> Checkpoint:
    return await persistence.checkpoint("manual")


@admin.post(
    "/backup",
    status_code=201,
    summary="A consistent online backup (the server keeps serving)",
    responses=CONFLICT,
)
async def backup(persistence: Persistence) -> Backup:
    return await persistence.backup()


@admin.get("/backups", summary="Backups, newest first")
async def backups(persistence: Persistence, limit: PageLimit = 50, cursor: PageCursor = None) -> Page[Backup]:
    return await persistence.backups(limit, cursor)


@admin.post(
    "/restore",
    summary="Replace the database's contents with a backup, atomically, while serving",
    responses={404: {"description": "no such backup"}, **CONFLICT},
)
async def restore(body: RestoreRequest, request: Request, persistence: Persistence) -> Restored:
    return await persistence.restore(str(body.backup_id), request.app)
