"""A fast OpenAI-shaped upstream for benchmarks: raw asyncio + httptools (+ uvloop when
installed), keep-alive, a fixed chat completion or a short SSE stream. It answers in a few
microseconds so that what the benchmark measures is the gateway in front of it.

    python bench/mock_upstream.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import orjson

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }
)
JSON_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-ratelimit-remaining-requests: 9999\r\n"
    b"content-length: %d\r\n\r\n" % len(COMPLETION)
) + COMPLETION


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"


EVENTS = [_chunk({"role": "assistant", "content": ""})]
EVENTS += [_chunk({"content": word}) for word in ("Hello", "!", " How", " can", " I", " help", "?")]
EVENTS += [_chunk({}, "stop"), b"data: [DONE]\n\n"]
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        self.body = []
        assert self.transport is not None
        if b'"stream":true' in body or b'"stream": true' in body:
            # The first event goes out at once, the rest right after, as a real stream would.
            self.transport.write(STREAM_HEAD + b"%x\r\n%s\r\n" % (len(EVENTS[0]), EVENTS[0]))
            self.transport.write(b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in EVENTS[1:]) + b"0\r\n\r\n")
        else:
            self.transport.write(JSON_RESPONSE)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1])))
