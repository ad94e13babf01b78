"""Run a function on untrusted code in a forked child with a wall-clock timeout and a memory cap.

The deducer's error-driven search executes repository code many times per class; running the whole search for
one class in one forked child (parent has torch imported, so the fork is warm) keeps it cheap, while a crash,
hang or memory blow-up costs that class only. The child gets its own temp working directory and an environment
without secrets; results come back through a pipe as plain picklable data.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import resource
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


@dataclass
class RunOutcome:
    """What came back from one isolated call: a value, or why there is none."""

    ok: bool
    value: Any = None
    error: str = ""  # "timeout", "memory_limit", "crash: ...", or "exception: ..."
    seconds: float = 0.0


def _child(fn: Callable[..., Any], args: tuple, conn: Connection, memory_limit_mb: int) -> None:
    for name in [k for k in os.environ if _SECRET.search(k)]:
        os.environ.pop(name, None)
    if memory_limit_mb > 0:
        limit = memory_limit_mb * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    workdir = tempfile.mkdtemp(prefix="github_index_")
    os.chdir(workdir)
    try:
        result = RunOutcome(ok=True, value=fn(*args))
    except MemoryError:
        result = RunOutcome(ok=False, error="memory_limit")
    except BaseException as exc:  # report everything, the parent decides
        tail = "".join(traceback.format_exception(exc)[-3:])
        result = RunOutcome(ok=False, error=f"exception: {type(exc).__name__}: {exc}\n{tail}")
    try:
        conn.send(result)
    finally:
        conn.close()
        os._exit(0)


def run_isolated(
    tasks: Iterable[tuple[str, Callable[..., Any], tuple]],
    jobs: int = 1,
    timeout_s: float = 60.0,
    memory_limit_mb: int = 4096,
) -> Iterator[tuple[str, RunOutcome]]:
    """Run `fn(*args)` for each (key, fn, args) in forked children, at most `jobs` at once.

    Yields (key, outcome) as children finish (not in submission order).
    """
    ctx = mp.get_context("fork")
    pending = iter(tasks)
    running: dict[Any, tuple[str, Any, Connection, float]] = {}
    exhausted = False
    while True:
        while not exhausted and len(running) < max(1, jobs):
            try:
                key, fn, args = next(pending)
            except StopIteration:
                exhausted = True
                break
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(fn, args, sender, memory_limit_mb), daemon=True)
            proc.start()
            sender.close()
            running[receiver] = (key, proc, receiver, time.monotonic())
        if not running:
            return
        ready = wait(list(running), timeout=0.2)
        for conn in ready:
            key, proc, _, start = running.pop(conn)
            try:
                outcome = conn.recv()
            except (EOFError, OSError):
                proc.join(5)
                outcome = RunOutcome(ok=False, error=f"crash: child exited with code {proc.exitcode}")
            conn.close()
            proc.join(5)
            outcome.seconds = time.monotonic() - start
            yield key, outcome
        now = time.monotonic()
        for conn, (key, proc, _, start) in list(running.items()):
            if now - start > timeout_s:
                proc.kill()
                proc.join(5)
                conn.close()
                del running[conn]
                yield key, RunOutcome(ok=False, error="timeout", seconds=now - start)
