"""Client-side pacing of LLM requests: at most `max_concurrency` in flight and, optionally, at most
`requests_per_minute` started per minute (evenly spaced, so a burst never trips the provider's limiter)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RequestLimiter:
    def __init__(self, max_concurrency: int, requests_per_minute: float = 0.0):
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self.interval_s = 60.0 / requests_per_minute if requests_per_minute > 0 else 0.0
        self._next_start = 0.0
        self._lock = threading.Lock()
        # asyncio primitives belong to one event loop; a backend reused under a new loop gets a new semaphore.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def _current_semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._semaphore

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `max_concurrency` slots (for a request and its retries)."""
        async with self._current_semaphore():
            yield

    async def pace(self) -> None:
        """Wait for this request's start time under the requests-per-minute limit (no-op when unlimited)."""
        if self.interval_s <= 0:
            return
        with self._lock:  # reserve a start time; the reservation itself never awaits
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.interval_s
        delay = start - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
