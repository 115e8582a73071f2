"""A small HTTP/1.1 client for upstream providers: pooled keep-alive connections on asyncio
protocols, responses parsed by httptools, bodies read whole or streamed chunk by chunk.

The gateway adds well under a millisecond per request; general-purpose clients (httpx) spend
several hundred microseconds of CPU on each request themselves, so the upstream hop is done
here with the least work possible: one write per request, the parser's callbacks filling a
buffer, one future per wait. A streamed response hands each network read on as it arrives;
closing a response before it is complete closes its connection, which is how a client that
hangs up cancels the upstream call.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

from mnemogate.core.contracts import ProviderError

# Reading pauses while this much of a streamed body waits for the consumer.
HIGH_WATER = 1 << 20
KEEPALIVE_EXPIRY = 5.0
MAX_IDLE = 256


class _Stale(Exception):
    """A pooled connection the server had closed before it answered: try a fresh one."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.headers_done = False
        self.complete = False
        self.received = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.until_close = False
        self.keep_alive = False

    # -- asyncio protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail(ConnectionError("the upstream sent an invalid HTTP response"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.until_close and exc is None:
            # A body without length or chunking ends when the upstream closes the connection.
            self.complete = True
            self.wake()
        elif not self.complete:
            self.fail(ConnectionError("the upstream closed the connection"))

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        framed = any(name in (b"content-length", b"transfer-encoding") for name, _ in self.headers)
        self.until_close = not framed and self.status not in (204, 304)
        self.wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self.wake()

    def on_message_complete(self) -> None:
        self.complete = True
        # The parser forgets once the callback returns: ask now.
        self.keep_alive = self.parser.should_keep_alive()
        self.wake()

    # -- waiting ---------------------------------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, seconds: float) -> None:
        waiter = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def take(self) -> bytes:
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    """Status and headers of an upstream response; the body is read with ``read()`` or
    ``chunks()``. A response must be read to the end or closed."""

    __slots__ = ("_conn", "_pool", "_timeout", "headers", "status")

    def __init__(self, pool: UpstreamPool, conn: _Connection, timeout: float) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self._timeout = timeout
        self.status = conn.status
        self.headers = conn.headers

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    async def read(self) -> bytes:
        conn = self._live()
        parts: list[bytes] = []
        try:
            while True:
                if conn.chunks:
                    parts.append(conn.take())
                if conn.complete:
                    break
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self._timeout)
        except BaseException:
            self.close()
            raise
        self._release()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, one network read (or what piled up since) at a time."""
        conn = self._live()
        try:
            while True:
                if conn.chunks:
                    yield conn.take()
                    continue
                if conn.complete:
                    break
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self._timeout)
        except BaseException:
            self.close()
            raise
        self._release()

    def close(self) -> None:
        """Abandon the response: an unfinished one takes its connection with it."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.complete:
            conn.close()
        elif conn is not None:
            self._pool.release(conn)

    def _live(self) -> _Connection:
        if self._conn is None:
            raise RuntimeError("the response was already consumed or closed")
        return self._conn

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)


class UpstreamPool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(self, base_url: str, *, connect_timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        self.base_path = parts.path.rstrip("/")
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        self.host_header = (self.host if default_port else f"{self.host}:{self.port}").encode("idna")
        self.connect_timeout = connect_timeout
        self.idle: list[_Connection] = []

    def head(self, method: str, path: str, static_headers: bytes, length: int) -> bytes:
        """The request line and headers; ``static_headers`` are pre-rendered ``Name: value\\r\\n`` lines."""
        return b"%s %s%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            method.encode(),
            self.base_path.encode(),
            path.encode(),
            self.host_header,
            length,
            static_headers,
        )

    async def request(
        self, method: str, path: str, static_headers: bytes, body: bytes, *, read_timeout: float
    ) -> UpstreamResponse:
        """Send a request and wait for the response's status and headers."""
        message = self.head(method, path, static_headers, len(body)) + body
        for _ in range(2):
            conn = self._idle_connection()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            conn.transport.write(message)  # type: ignore[union-attr]
            try:
                while not conn.headers_done:
                    if conn.error is not None:
                        if reused and not conn.received:
                            raise _Stale()
                        raise conn.error
                    await conn.wait(read_timeout)
            except _Stale:
                conn.close()
                continue
            except TimeoutError:
                conn.close()
                raise ProviderError(
                    "the provider did not answer in time", kind="timeout", status=504
                ) from None
            except ConnectionError as exc:
                conn.close()
                raise ProviderError(str(exc), kind="connect", status=502) from None
            except BaseException:
                conn.close()
                raise
            return UpstreamResponse(self, conn, read_timeout)
        raise ProviderError("the upstream closed the connection", kind="connect", status=502)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise ProviderError("connecting to the provider timed out", kind="timeout", status=504) from None
        except OSError as exc:
            raise ProviderError(
                f"could not connect to the provider ({type(exc).__name__})", kind="connect", status=502
            ) from None
        return conn

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_since > KEEPALIVE_EXPIRY:
                conn.close()
                continue
            return conn
        return None

    def release(self, conn: _Connection) -> None:
        if conn.closed or not conn.keep_alive or len(self.idle) >= MAX_IDLE:
            conn.close()
            return
        conn.reset()
        conn.idle_since = time.monotonic()
        self.idle.append(conn)

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()
