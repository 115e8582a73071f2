from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext
from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.websocket import service
from mnemogate.plugins.websocket.settings import WebSocketSettings


@hookimpl
def register_settings(register: Any) -> None:
    register(WebSocketSettings)


@hookimpl
def register_ws_channels(register: Any) -> None:
    register(
        service.GATEWAY,
        path="/ws",
        description="gateway requests: started, stream progress, finished, failed",
    )
    register(
        service.EVENTS, path="/ws/events", description="activity feed: sessions and finished gateway requests"
    )
    register(service.HEALTH, path="/ws/health", description="server health every health_interval_seconds")
    register(
        service.LEARNING, path="/ws/learning", description="consolidation and pattern promotion progress"
    )


@hookimpl
def startup(app: FastAPI) -> None:
    service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()


@hookimpl
async def chat_request(ctx: ChatContext) -> None:
    live = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if live is not None:
        await live.request_started(ctx)


@hookimpl
async def chat_response(ctx: ChatContext) -> None:
    live = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if live is not None:
        await live.request_finished(ctx)
