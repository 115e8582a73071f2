import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.pagination import Page
from mnemogate.plugins.auth.middleware import SERVICE
from mnemogate.plugins.auth.models import KeyCreate, KeyCreated, KeyOut
from mnemogate.plugins.auth.service import KeyService


async def get_keys(registry: RegistryDep) -> KeyService:
    return registry.services[SERVICE]


Keys = Annotated[KeyService, Depends(get_keys)]

router = APIRouter(prefix="/api/v1/keys")


@router.post("", status_code=201, summary="Create an API key (the key is in this response only)")
async def create_key(body: KeyCreate, principal: PrincipalDep, keys: Keys) -> KeyCreated:
    return await keys.create(body, principal)


@router.get("", summary="List API keys of the caller's tenant")
async def list_keys(
    principal: PrincipalDep, keys: Keys, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[KeyOut]:
    return await keys.list(None if principal.is_open else principal.tenant, limit, cursor)


@router.delete("/{key_id}", summary="Revoke an API key")
async def revoke_key(key_id: uuid.UUID, principal: PrincipalDep, keys: Keys) -> KeyOut:
    return await keys.revoke(str(key_id), None if principal.is_open else principal.tenant)
