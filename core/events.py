"""The event bus and the WebSocket hub.

Plugins publish events on named channels (``await registry.events.publish(...)``); the hub
serves each registered channel as a WebSocket endpoint and forwards the events of the caller's
tenant. The default bus is in-process; a plugin can replace it (``register_event_bus``) with
one that spans instances. Each subscriber has a bounded queue: a slow client loses its oldest
events (and is told how many) instead of slowing everyone down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from mnemogate.core.contracts import Principal, WSChannel, utcnow

log = logging.getLogger("mnemogate.events")

SUBSCRIBER_QUEUE_SIZE = 1000
# Events published for this tenant reach every subscriber (server-wide news such as health).
EVERY_TENANT = "*"
CLOSE_GOING_AWAY = 1001


@dataclass(slots=True)
class Event:
    channel: str
    type: str
    tenant: str
    data: dict[str, Any] = field(default_factory=dict)
    ts: str = field(default_factory=lambda: utcnow().isoformat())

    def to_json(self) -> bytes:
        return orjson.dumps({"channel": self.channel, "type": self.type, "ts": self.ts, "data": self.data})

    def to_wire(self) -> bytes:
        return orjson.dumps(
            {
                "channel": self.channel,
                "type": self.type,
                "tenant": self.tenant,
                "ts": self.ts,
                "data": self.data,
            }
        )

    @classmethod
    def from_wire(cls, raw: bytes | str) -> Event:
        value = orjson.loads(raw)
        return cls(value["channel"], value["type"], value["tenant"], value.get("data") or {}, value["ts"])


class Subscription:
    def __init__(self, channel: str, tenant: str | None, size: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self.channel = channel
        self.tenant = tenant
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.tenant is not None and event.tenant != self.tenant and event.tenant != EVERY_TENANT:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()


@runtime_checkable
class EventBus(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, event: Event) -> None: ...
    def subscribe(
        self, channel: str, tenant: str | None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]: ...


class LocalFanout:
    """Subscribers of this process by channel; every bus delivers through one of these."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[Subscription]] = {}

    def deliver(self, event: Event) -> None:
        for subscription in self.subscribers.get(event.channel, ()):
            subscription.offer(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, tenant: str | None) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel, tenant)
        self.subscribers.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            self.subscribers[channel].discard(subscription)

    def count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())


class InProcessEventBus:
    """Delivers events to subscribers of this process only."""

    def __init__(self) -> None:
        self.local = LocalFanout()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, event: Event) -> None:
        self.local.deliver(event)

    def subscribe(
        self, channel: str, tenant: str | None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.local.subscribe(channel, tenant)


class Events:
    """What plugins use: publish to a channel, subscribe to one."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def publish(self, channel: str, type: str, tenant: str, data: dict[str, Any] | None = None) -> None:
        try:
            await self.bus.publish(Event(channel, type, tenant, data or {}))
        except Exception as exc:
            # Live events are best effort: a failing bus must never fail the write that raised them.
            log.warning("event on %s not delivered: %s", channel, type(exc).__name__)

    def subscribe(
        self, channel: str, tenant: str | None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.bus.subscribe(channel, tenant)


class WebSocketHub:
    """Serves registered channels over WebSocket and closes every socket on shutdown."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self.sockets: set[WebSocket] = set()

    async def serve(self, websocket: WebSocket, channel: WSChannel, principal: Principal) -> None:
        await websocket.accept()
        self.sockets.add(websocket)
        tenant = None if principal.is_open else principal.tenant
        try:
            async with self.events.subscribe(channel.name, tenant) as subscription:
                await websocket.send_text(
                    Event(channel.name, "subscribed", principal.tenant).to_json().decode()
                )
                await self._pump(websocket, subscription)
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets.discard(websocket)

    async def _pump(self, websocket: WebSocket, subscription: Subscription) -> None:
        reader = asyncio.create_task(self._read_until_closed(websocket))
        try:
            while not reader.done():
                getter = asyncio.create_task(subscription.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                event = getter.result()
                if subscription.dropped:
                    await websocket.send_text(
                        orjson.dumps(
                            {
                                "channel": subscription.channel,
                                "type": "dropped",
                                "ts": event.ts,
                                "data": {"count": subscription.dropped},
                            }
                        ).decode()
                    )
                    subscription.dropped = 0
                await websocket.send_text(event.to_json().decode())
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await reader

    @staticmethod
    async def _read_until_closed(websocket: WebSocket) -> None:
        # Clients may send {"type": "ping"}; anything else is ignored. Returns on disconnect.
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") and '"ping"' in message["text"]:
                await websocket.send_text('{"type":"pong"}')

    async def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        for websocket in list(self.sockets):
            if websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await websocket.close(code=code, reason=reason)
        self.sockets.clear()
