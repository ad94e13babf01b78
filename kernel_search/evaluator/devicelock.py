"""A cross-process reader/writer lock per device, so parallel evaluations never time over each other.

Timing takes the lock exclusively; every other GPU phase (correctness runs, compilation with autotuning) takes
it shared. Writers pass a turnstile first, so a stream of readers cannot starve a measurement. Built on flock:
a killed process releases its locks with its file descriptors.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator


class DeviceLock:
    def __init__(self, directory: str | None, device: str):
        self.enabled = directory is not None
        self.name = device.replace(":", "_")
        self.exclusive_spans: list[tuple[float, float]] = []  # (acquired, released) wall clock of each hold
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
            stem = os.path.join(directory, self.name)
            self._rw = os.open(stem + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            self._turnstile = os.open(stem + ".turnstile", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        fcntl.flock(self._rw, fcntl.LOCK_SH)
        fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._rw, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._rw, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        acquired = time.time()
        try:
            yield
        finally:
            self.exclusive_spans.append((acquired, time.time()))
            fcntl.flock(self._rw, fcntl.LOCK_UN)
