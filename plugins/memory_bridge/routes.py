import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.plugins.memory_bridge.models import SessionModes, SessionModesOut
from mnemogate.plugins.memory_bridge.service import SERVICE, MemoryBridge


async def get_bridge(registry: RegistryDep) -> MemoryBridge:
    return registry.services[SERVICE]


Bridge = Annotated[MemoryBridge, Depends(get_bridge)]

reads = APIRouter(prefix="/api/sessions")
writes = APIRouter(prefix="/api/sessions")


@reads.get("/{session_id:uuid}/memory-modes", summary="The memory modes of a session's requests")
async def get_modes(session_id: uuid.UUID, principal: PrincipalDep, bridge: Bridge) -> SessionModesOut:
    return await bridge.session_modes_of(principal.tenant, str(session_id))


@writes.put(
    "/{session_id:uuid}/memory-modes",
    summary="Capture and/or inject for a session's requests without X-Mnemogate-Memory ([]: neither)",
)
async def set_modes(
    session_id: uuid.UUID, body: SessionModes, principal: PrincipalDep, bridge: Bridge
) -> SessionModesOut:
    return await bridge.set_session_modes(principal.tenant, str(session_id), list(body.modes))


@writes.delete(
    "/{session_id:uuid}/memory-modes",
    status_code=204,
    summary="Forget a session's modes (its requests follow the key's, tenant's or server's again)",
)
async def clear_modes(session_id: uuid.UUID, principal: PrincipalDep, bridge: Bridge) -> Response:
    await bridge.clear_session_modes(principal.tenant, str(session_id))
    return Response(status_code=204)
