from typing import Annotated

from fastapi import APIRouter, Depends

from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.plugins.consolidation.models import RunRequest, RunResult, Status
from mnemogate.plugins.consolidation.service import SERVICE, Consolidator


async def get_consolidator(registry: RegistryDep) -> Consolidator:
    return registry.services[SERVICE]


Consolidation = Annotated[Consolidator, Depends(get_consolidator)]

reads = APIRouter(prefix="/api/v1/consolidation")
writes = APIRouter(prefix="/api/v1/consolidation")


@writes.post(
    "/run",
    summary="Consolidate the caller's new episodes now (bounded; 409 while a run is in progress)",
    responses={409: {"description": "a run for this tenant is in progress"}},
)
async def run(
    principal: PrincipalDep, consolidation: Consolidation, body: RunRequest | None = None
) -> RunResult:
    request = body or RunRequest()
    return await consolidation.run(principal.tenant, max_episodes=request.max_episodes, decay=request.decay)


@reads.get(
    "/status", summary="Schedule, whether a run is in progress, and the caller's progress and last result"
)
async def status(principal: PrincipalDep, consolidation: Consolidation) -> Status:
    return await consolidation.status(principal.tenant)
