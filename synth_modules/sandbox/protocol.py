"""Newline-delimited JSON messages over raw pipe file descriptors, with timeouts.

Both the pool (parent side) and the worker speak it. Raw fds plus select() let either side wait for a message
and for other events (a child exiting, the peer closing) at the same time, and never block past a deadline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import sys
import time
from typing import Any

from synth_modules.sandbox.api import SandboxOptions


class ChannelClosed(EOFError):
    """The peer closed its end (it exited or died)."""


class ChannelTimeout(TimeoutError):
    """No complete message arrived before the deadline."""


class Channel:
    """One reading fd and one writing fd carrying one JSON object per line."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def _pop_line(self) -> dict[str, Any] | None:
        newline = self._buffer.find(b"\n")
        if newline < 0:
            return None
        line, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
        return json.loads(line)

    def has_pending(self) -> bool:
        return b"\n" in self._buffer

    def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message; ChannelTimeout after `timeout` seconds, ChannelClosed on end of file."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._pop_line()
            if message is not None:
                return message
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.read_fd], [], [], remaining)
            if not ready:
                raise ChannelTimeout(f"no message within {timeout} s")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                raise ChannelClosed("peer closed the channel")
            self._buffer += chunk

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            with contextlib.suppress(OSError):
                os.close(fd)


_progress_channel: Channel | None = None


def open_progress(channel: Channel) -> None:
    """The service's control channel, for `report_progress` (called by service.py before its handler runs)."""
    global _progress_channel
    _progress_channel = channel


def report_progress(**fields: Any) -> None:
    """From a service handler: a message its parent receives before the reply (`IsolatedWorker.call`'s
    `on_progress`), e.g. the stage a later timeout or crash interrupted. Outside a service: nothing."""
    if _progress_channel is not None:
        _progress_channel.send({"op": "progress", **fields})


def options_to_dict(options: SandboxOptions) -> dict[str, Any]:
    """SandboxOptions as a JSON-friendly dict (the worker rebuilds them with SandboxOptions(**data))."""
    data = dataclasses.asdict(options)
    data["extra_allowed_imports"] = list(options.extra_allowed_imports)
    return data


def take_over_stdio(python_stdout_to_stderr: bool = False) -> Channel:
    """The protocol on private copies of stdin/stdout; fd 0 becomes /dev/null and fd 1 goes to stderr (the
    log), so nothing a program or a C library prints can corrupt the channel. The service also points Python's
    sys.stdout at stderr; the fork server leaves it on fd 1, which each forked child redirects to its own file."""
    control = Channel(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    if python_stdout_to_stderr:
        sys.stdout = sys.stderr
    return control
