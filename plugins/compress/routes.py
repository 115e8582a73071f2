import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.plugins.compress.models import CompressRequest, CompressResult, CompressStats
from mnemogate.plugins.compress.service import SERVICE, CompressService


async def get_compress(registry: RegistryDep) -> CompressService:
    return registry.services[SERVICE]


Compress = Annotated[CompressService, Depends(get_compress)]

write_router = APIRouter(prefix="/api/compress")
read_router = APIRouter(prefix="/api/compress")


@read_router.get("/stats", summary="What compression saved in the caller's tenant")
async def tenant_stats(principal: PrincipalDep, compress: Compress) -> CompressStats:
    return await compress.stats(principal.tenant)


@read_router.get("/{session_id:uuid}/stats", summary="What compression saved in one session")
async def session_stats(session_id: uuid.UUID, principal: PrincipalDep, compress: Compress) -> CompressStats:
    return await compress.stats(principal.tenant, str(session_id))


@write_router.post(
    "/{session_id:uuid}", summary="Compress messages or a text for a session (counted in its stats)"
)
async def compress_now(
    session_id: uuid.UUID, body: CompressRequest, principal: PrincipalDep, compress: Compress
) -> CompressResult:
    return await compress.compress_for_session(principal.tenant, str(session_id), body.messages, body.text)
