"""FastAPI dependencies every plugin shares: registry, principal, scope checks, DB session, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from mnemogate.core.contracts import Principal
from mnemogate.core.errors import Forbidden, Unauthorized
from mnemogate.core.registry import Registry

# Declared so the OpenAPI document shows how to authenticate; the auth middleware does the work.
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key header")

MAX_PAGE_SIZE = 500


def get_registry(connection: HTTPConnection) -> Registry:
    return connection.app.state.registry


def get_principal(connection: HTTPConnection) -> Principal:
    """The caller, as the auth middleware resolved it; without the auth plugin, everyone is open."""
    state = connection.scope.get("state") or {}
    return state.get("principal") or Principal.open()


# Dependencies are async so FastAPI calls them inline: a plain function would be sent to the
# thread pool on every request, which costs more than the rest of a gateway request.
async def _registry(connection: HTTPConnection) -> Registry:
    return get_registry(connection)


async def _principal(connection: HTTPConnection) -> Principal:
    return get_principal(connection)


RegistryDep = Annotated[Registry, Depends(_registry)]
PrincipalDep = Annotated[Principal, Depends(_principal)]


def check_scope(principal: Principal, scope: str | None) -> None:
    if principal.allows(scope):
        return
    if not principal.scopes:
        raise Unauthorized("a valid API key is required", headers={"WWW-Authenticate": "Bearer"})
    raise Forbidden(f"this API key lacks the {scope!r} scope")


def require_scope(scope: str) -> Any:
    """Dependency that lets the request through only with ``scope`` (or a higher one)."""

    async def dependency(
        principal: PrincipalDep,
        _bearer_token: Annotated[Any, Depends(_bearer)] = None,
        _header_key: Annotated[str | None, Depends(_api_key)] = None,
    ) -> Principal:
        check_scope(principal, scope)
        return principal

    dependency.__name__ = f"require_{scope}"
    return Security(dependency)


def plugin_settings(plugin: str) -> Callable[[HTTPConnection], Any]:
    """Dependency returning the validated settings object of ``plugin``."""

    async def dependency(connection: HTTPConnection) -> Any:
        return get_registry(connection).plugin_settings(plugin)

    return dependency


async def get_db_session(registry: RegistryDep) -> AsyncIterator[AsyncSession]:
    """A session for reads in routes; services that write use ``registry.db.write()``."""
    async with registry.db.read() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db_session)]

PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
PageCursor = Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")]
