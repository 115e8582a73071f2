"""The OpenAI-compatible endpoints and the model and provider listings.

``/chat/completions`` reads its body once, as raw JSON, so every field a client sends (known to
us or not) reaches the provider; responses carry ``X-Mnemogate-Overhead-Ms`` (the time the
gateway added: total minus waiting on the provider) and ``X-Session-ID`` when a session took
the request.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from mnemogate.core.contracts import ChatContext, ModelInfo, Principal
from mnemogate.core.dependencies import PageCursor, PageLimit, RegistryDep
from mnemogate.core.errors import AppError, BadRequest, error_response
from mnemogate.core.pagination import Page, page_of_sequence
from mnemogate.plugins.proxy.middleware import CLOCK_KEY
from mnemogate.plugins.proxy.models import ModelOut, ProviderOut
from mnemogate.plugins.proxy.service import SERVICE, Gateway, check_chat_body

OVERHEAD_HEADER = "X-Mnemogate-Overhead-Ms"
SESSION_HEADER = "x-session-id"
_PRIVATE_HEADERS = frozenset((b"authorization", b"x-api-key", b"cookie", b"proxy-authorization"))
_OPEN = Principal.open()
_CHAT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {
                        "model": {"type": ["string", "null"], "description": "provider/model or an alias"},
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "stream": {"type": ["boolean", "null"]},
                        "stream_options": {"type": ["object", "null"]},
                    },
                    "additionalProperties": True,
                }
            }
        },
    }
}

chat_router = APIRouter()
models_router = APIRouter()


async def chat_completions(request: Request) -> Response:
    scope = request.scope
    state = scope["state"]
    started = state.get(CLOCK_KEY) or time.perf_counter()
    gateway: Gateway = request.app.state.registry.services[SERVICE]
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _refused(
            request, BadRequest("the request body is not valid JSON", code="invalid_json"), started
        )
    try:
        check_chat_body(body)
    except BadRequest as exc:
        return _refused(request, exc, started)
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name not in _PRIVATE_HEADERS
    }
    ctx = ChatContext(
        principal=state.get("principal") or _OPEN,
        body=body,
        session_id=headers.get(SESSION_HEADER),
        headers=headers,
        request_id=state.get("request_id"),
        stream=body.get("stream") is True,
        upstream_ms=0.0,
        registry=request.app.state.registry,
    )
    try:
        targets = await gateway.prepare(ctx)
        if ctx.stream:
            iterator, first = await gateway.open_stream(ctx, targets)
        else:
            result = await gateway.complete(ctx, targets)
    except AppError as exc:
        gateway.failed(ctx, exc, started)
        response = error_response(
            exc.status,
            exc.message,
            scope,
            headers={**exc.headers, **_headers(ctx, ctx.overhead_ms)},
            code=exc.code,
            type=exc.type,
        )
        response.background = BackgroundTask(gateway.respond, ctx)
        return response
    if ctx.stream:
        ctx.ttft_ms = (time.perf_counter() - started) * 1000
        stream_headers = _headers(ctx, ctx.ttft_ms - ctx.upstream_ms)
        stream_headers["Cache-Control"] = "no-cache"
        stream_headers["X-Accel-Buffering"] = "no"
        return StreamingResponse(
            gateway.relay(ctx, iterator, first, started),
            media_type="text/event-stream",
            headers=stream_headers,
        )
    gateway.finished(ctx, started)
    payload = orjson.dumps(result)
    for response_filter in ctx.response_filters:
        payload = response_filter(payload)
    return Response(
        payload,
        media_type="application/json",
        headers=_headers(ctx, ctx.overhead_ms),
        background=BackgroundTask(gateway.respond, ctx),
    )


def _headers(ctx: ChatContext, overhead_ms: float | None) -> dict[str, str]:
    headers = {OVERHEAD_HEADER: f"{overhead_ms or 0.0:.3f}"}
    if ctx.session_id:
        headers["X-Session-ID"] = ctx.session_id
    return headers


def _refused(request: Request, exc: AppError, started: float) -> Response:
    overhead = (time.perf_counter() - started) * 1000
    return error_response(
        exc.status, exc.message, request.scope, headers={OVERHEAD_HEADER: f"{overhead:.3f}"}, code=exc.code
    )


for path in ("/chat/completions", "/v1/chat/completions"):
    chat_router.add_api_route(
        path,
        chat_completions,
        methods=["POST"],
        summary="Chat completion (OpenAI format; streaming with stream=true)",
        openapi_extra=_CHAT_BODY,
        response_class=Response,
        name=f"chat_completions{'_v1' if path.startswith('/v1') else ''}",
    )


# -- listings ------------------------------------------------------------------------------------


def _model_out(info: ModelInfo) -> ModelOut:
    return ModelOut(
        id=f"{info.provider}/{info.id}",
        provider=info.provider,
        model=info.id,
        context_window=info.context_window,
        input_price_per_mtok=info.input_price_per_mtok,
        output_price_per_mtok=info.output_price_per_mtok,
        enabled=info.enabled,
    )


async def openai_models(registry: RegistryDep) -> dict[str, Any]:
    gateway: Gateway = registry.services[SERVICE]
    data = [
        {"id": f"{m.provider}/{m.id}", "object": "model", "created": 0, "owned_by": m.provider}
        for m in gateway.enabled_models()
    ]
    data += [
        {"id": alias, "object": "model", "created": 0, "owned_by": target.partition("/")[0]}
        for alias, target in gateway.settings.aliases.items()
    ]
    return {"object": "list", "data": data}


for path in ("/models", "/v1/models"):
    models_router.add_api_route(
        path,
        openai_models,
        methods=["GET"],
        summary="Enabled models and aliases in OpenAI's format",
        name=f"openai_models{'_v1' if path.startswith('/v1') else ''}",
    )


@models_router.get("/api/providers", summary="Registered LLM providers")
async def providers(
    registry: RegistryDep, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[ProviderOut]:
    gateway: Gateway = registry.services[SERVICE]
    seen = gateway.limits.snapshot()
    items = [
        ProviderOut(
            name=name,
            kind=getattr(provider, "kind", "custom"),
            models=sum(1 for m in gateway.models.get(name, ()) if m.enabled),
            accepts_any_model=bool(getattr(provider, "accepts_any_model", False)),
            rate_limits=seen.get(name, {}),
        )
        for name, provider in gateway.providers.items()
    ]
    return page_of_sequence(items, limit, cursor)


@models_router.get("/api/models", summary="Enabled models of every provider")
async def enabled_models(
    registry: RegistryDep, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[ModelOut]:
    gateway: Gateway = registry.services[SERVICE]
    return page_of_sequence([_model_out(m) for m in gateway.enabled_models()], limit, cursor)


@models_router.get("/api/models/all", summary="Every model of every provider, with context window and prices")
async def all_models(
    registry: RegistryDep, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[ModelOut]:
    gateway: Gateway = registry.services[SERVICE]
    return page_of_sequence([_model_out(m) for m in gateway.all_models()], limit, cursor)
