"""Direct dispatch of request-only routes (core/routing.py): the same answers as through
FastAPI's router — the pack's scope enforced, errors in the envelope, the route in metrics —
and only for routes no earlier route would take."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from mnemogate.core.dependencies import RegistryDep
from mnemogate.core.errors import NotFound
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.routing import DirectRoutes
from mnemogate.core.testing import running
from mnemogate.plugins.auth.models import KeyCreate

router = APIRouter()


@router.get("/direct/{name}")
async def named(name: str) -> dict[str, str]:
    return {"named": name}


@router.get("/direct/fixed")
async def fixed(request: Request) -> Response:  # shadowed by /direct/{name}
    return Response(b'{"fixed":true}', media_type="application/json")


@router.post("/direct/echo")
async def echo(request: Request) -> Response:
    body = orjson.loads(await request.body())
    if body.get("missing"):
        raise NotFound("no such thing", code="thing_not_found")
    route = request.scope["route"]
    return Response(orjson.dumps({"echo": body, "route": route.path}), media_type="application/json")


@router.post("/direct/with-registry")
async def with_registry(request: Request, registry: RegistryDep) -> Response:
    return Response(orjson.dumps({"plugins": len(registry.host.enabled_names()) > 0}))


class DirectPlugin:
    plugin_name = "direct_routes"

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register(router, prefix="/api", scope="write")


async def _key(app: Any, scope: str) -> str:
    keys = app.state.registry.services["auth.keys"]
    created = await keys.create(KeyCreate(name=scope, scopes=[scope], tenant="default"))  # type: ignore[arg-type]
    return created.key


def _table(app: Any) -> dict[tuple[str, str], Any]:
    stack = app.router.middleware_stack
    assert isinstance(stack, DirectRoutes)
    return stack.table


async def test_only_request_only_routes_no_earlier_route_takes_are_direct(make_app: Any) -> None:
    app = make_app(plugins=[DirectPlugin()])
    table = _table(app)
    assert ("POST", "/api/direct/echo") in table
    assert ("POST", "/v1/chat/completions") in table
    assert ("GET", "/api/direct/fixed") not in table  # /api/direct/{name} comes first
    assert ("POST", "/api/direct/with-registry") not in table
    async with running(app) as client:
        assert (await client.get("/api/direct/fixed")).json() == {"named": "fixed"}
        assert (await client.post("/api/direct/with-registry")).json() == {"plugins": True}


async def test_a_direct_route_checks_the_packs_scope(make_app: Any) -> None:
    app = make_app(plugins=[DirectPlugin()])
    async with running(app) as client:
        read, write = await _key(app, "read"), await _key(app, "write")
        anonymous = await client.post("/api/direct/echo", content=b"{}")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "unauthorized"
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        refused = await client.post(
            "/api/direct/echo", content=b"{}", headers={"Authorization": f"Bearer {read}"}
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["request_id"] == refused.headers["X-Request-ID"]
        answered = await client.post(
            "/api/direct/echo", content=b'{"a":1}', headers={"Authorization": f"Bearer {write}"}
        )
        assert answered.status_code == 200
        assert answered.json() == {"echo": {"a": 1}, "route": "/direct/echo"}


async def test_errors_and_metrics_of_a_direct_route_are_as_through_the_router(make_app: Any) -> None:
    app = make_app(plugins=[DirectPlugin()])
    async with running(app) as client:
        missing = await client.post("/api/direct/echo", content=b'{"missing":true}')
        assert missing.status_code == 404
        assert missing.json()["error"] == {
            "code": "thing_not_found",
            "message": "no such thing",
            "type": "not_found_error",
            "request_id": missing.headers["X-Request-ID"],
        }
        assert (await client.post("/api/direct/echo", content=b"{}")).status_code == 200
        wrong_method = await client.put("/api/direct/echo")
        assert wrong_method.status_code == 405
        metrics = (await client.get("/metrics")).text
        assert 'route="/api/direct/echo",status="404"' in metrics
        assert 'route="/api/direct/echo",status="200"' in metrics
