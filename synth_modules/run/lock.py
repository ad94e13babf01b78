"""One writer per directory: an exclusive `fcntl` lock on DIR/.lock, held for as long as a run owns DIR.

Two runs appending to the same ledgers would interleave their lines and redo each other's samples. The lock is
taken before anything in the directory is read or written; the lock file records the holder's pid so the
refused run can say who holds it. The kernel releases the lock when the holder exits, however it dies, so a
killed run never leaves a stale lock (the file stays; only the lock matters). Advisory and local: it protects
against another synth-torch process on the same machine (or a filesystem with working `flock`), not against
other tools.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from synth_modules.config import ConfigError

LOCK_FILE = ".lock"


class DirectoryLockedError(ConfigError):
    """Another process holds the directory's lock."""


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = path.read_text(encoding="utf-8").split()
        if text:
            return f"pid {int(text[0])}"
    return "a process that has not written its pid yet"


class DirectoryLock:
    """`with DirectoryLock(dir, "run"):` or `lock = DirectoryLock(dir).acquire(); ...; lock.release()`."""

    def __init__(self, root: Path, what: str = "run"):
        self.path = Path(root) / LOCK_FILE
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> DirectoryLock:
        """Take the lock or raise DirectoryLockedError naming the holder; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DirectoryLockedError(
                f"{self.path.parent} is in use by another {self.what} ({_holder(self.path)}); wait for it to "
                "finish or stop it, or use another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
