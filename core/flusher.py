"""Buffered writes off the request path: one way for every plugin that batches rows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from mnemogate.core.errors import describe_exception

log = logging.getLogger("mnemogate.flusher")


class Flusher:
    """Runs ``flush`` every ``interval`` seconds in a task of its own, at once after ``wake()``
    (a buffer grew large), and a last time on ``stop()``. A failed flush is logged, naming
    ``what`` it writes, and the next one tries again."""

    def __init__(self, flush: Callable[[], Awaitable[None]], interval: float, what: str) -> None:
        self._flush = flush
        self.interval = interval
        self.what = what
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"flush {self.what}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self._flush()
            except Exception as exc:
                log.error("writing %s failed: %s", self.what, describe_exception(exc))
