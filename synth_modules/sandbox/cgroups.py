"""Memory caps per sandboxed process and for a whole pool through cgroup v2, where this process may use it.

cgroup v2 counts what a process really uses (RSS, page cache, kernel memory), CUDA processes included, and a
pool-wide cgroup caps all workers together. It needs the unified hierarchy with the memory controller enabled
for the children of this process's cgroup, and the right to create cgroups there (root in a VM or a delegated
subtree). Elsewhere `MemoryCgroup.create` returns None and callers fall back to rlimits (RLIMIT_AS for CPU
children) and the pool's RSS watchdog (GPU workers); `mechanism` in the isolation report says which applied.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _own_cgroup() -> Path | None:
    """This process's cgroup directory in the unified (v2) hierarchy, or None (v1-only, or not mounted)."""
    if not (ROOT / "cgroup.controllers").exists():
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return ROOT / line[3:].lstrip("/")
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


class MemoryCgroup:
    """A cgroup for one pool (capped in total) whose leaves cap one process each."""

    def __init__(self, path: Path):
        self.path = path
        self.leaves: list[Path] = []

    @classmethod
    def create(cls, total_mb: int, name: str | None = None) -> MemoryCgroup | None:
        """A child of this process's cgroup with memory.max = `total_mb`; None where that is not possible."""
        base = _own_cgroup()
        if base is None:
            return None
        try:
            if "memory" not in (base / "cgroup.subtree_control").read_text().split():
                return None
            path = base / (name or f"synth-torch-{os.getpid()}")
            path.mkdir(exist_ok=True)
        except OSError:
            return None
        group = cls(path)
        try:
            _write(path / "memory.max", str(total_mb * 1024 * 1024))
            _write(path / "cgroup.subtree_control", "+memory")
        except OSError:
            group.close()
            return None
        return group

    def leaf(self, name: str, limit_mb: int) -> Path:
        """A leaf cgroup for one process, capped at `limit_mb` (no swap where the kernel has swap accounting)."""
        path = self.path / name
        path.mkdir(exist_ok=True)
        _write(path / "memory.max", str(limit_mb * 1024 * 1024))
        with contextlib.suppress(OSError):
            _write(path / "memory.swap.max", "0")
        self.leaves.append(path)
        return path

    def close(self) -> None:
        """Remove the leaves and the pool's cgroup (after their processes have exited)."""
        for path in [*reversed(self.leaves), self.path]:
            with contextlib.suppress(OSError):
                path.rmdir()


def join(leaf: str | Path, pid: int = 0) -> None:
    """Move `pid` (0: the calling process) into `leaf`."""
    _write(Path(leaf) / "cgroup.procs", str(pid))


def oom_kills(leaf: str | Path) -> int:
    """How many processes the kernel killed in `leaf` for exceeding its memory.max."""
    try:
        for line in (Path(leaf) / "memory.events").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
