from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.pagination import Page
from mnemogate.plugins.sanitizer.models import MaskOut, RevealedMask, SanitizerStats, Toggle, ToggleState
from mnemogate.plugins.sanitizer.service import SERVICE, SanitizerService


async def get_sanitizer(registry: RegistryDep) -> SanitizerService:
    return registry.services[SERVICE]


Sanitizer = Annotated[SanitizerService, Depends(get_sanitizer)]
ContentHash = Annotated[
    str, Path(pattern="^[0-9a-f]{16}$", description="the hash a placeholder ends with, 16 hex digits")
]

read_router = APIRouter()
admin_router = APIRouter()


@read_router.get("/api/mask", summary="Masked secrets of the caller's tenant (never the originals)")
async def list_masks(
    principal: PrincipalDep,
    sanitizer: Sanitizer,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
    kind: Annotated[str | None, Query(max_length=40, description="only this detector kind")] = None,
) -> Page[MaskOut]:
    return await sanitizer.list(principal.tenant, limit, cursor, kind)


@read_router.get("/api/sanitizer/stats", summary="Detectors, masks per kind, and masking figures")
async def stats(principal: PrincipalDep, sanitizer: Sanitizer) -> SanitizerStats:
    return await sanitizer.stats(principal.tenant)


@admin_router.get("/api/mask/{content_hash}", summary="Reveal one masked original (audited)")
async def reveal(content_hash: ContentHash, principal: PrincipalDep, sanitizer: Sanitizer) -> RevealedMask:
    return await sanitizer.reveal(principal, content_hash)


@admin_router.post("/api/sanitizer/toggle", summary="Switch masking on or off for the tenant (audited)")
async def toggle(body: Toggle, principal: PrincipalDep, sanitizer: Sanitizer) -> ToggleState:
    return await sanitizer.toggle(principal, body.enabled)
