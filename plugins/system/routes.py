from fastapi import APIRouter

from mnemogate.core.dependencies import PageCursor, PageLimit, RegistryDep
from mnemogate.core.pagination import Page, page_of_sequence
from mnemogate.plugins.system import service
from mnemogate.plugins.system.models import Health, PluginOut, RouteOut, Stats, Status

probes = APIRouter()
inventory = APIRouter()


@probes.get("/health", summary="Liveness for load balancers")
async def health_simple() -> Status:
    return Status(status="ok")


@probes.get("/api/v1/health", summary="Health with component checks")
async def health(registry: RegistryDep) -> Health:
    return await service.health(registry)


@probes.get("/api/v1/health/live", summary="Liveness: the process serves requests")
async def live() -> Status:
    return Status(status="ok")


@probes.get("/api/v1/health/ready", summary="Readiness: the database answers (503 otherwise)")
async def ready(registry: RegistryDep) -> Status:
    await service.ensure_ready(registry)
    return Status(status="ready")


@inventory.get("/stats", summary="Server statistics")
async def stats(registry: RegistryDep) -> Stats:
    return await service.stats(registry)


@inventory.get("/plugins", summary="Installed plugins, enabled or not")
async def plugins(
    registry: RegistryDep, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[PluginOut]:
    return page_of_sequence(service.plugins(registry), limit, cursor)


@inventory.get("/routes", summary="The mounted route inventory (duplicates flagged)")
async def routes(registry: RegistryDep, limit: PageLimit = 100, cursor: PageCursor = None) -> Page[RouteOut]:
    return page_of_sequence(service.routes(registry), limit, cursor)
