"""Least-loaded dispatch of jobs over a fixed set of Ray actors, resubmitting the jobs of actors that die.

Ray restarts a dead actor (max_restarts) but a job that was running in it is gone. The dispatcher keeps every
job until its actor answers, so a lost actor costs time, never a job: its jobs go back to the front of the
queue and run on whichever actor is alive next. Jobs wait on the driver (not in actor mailboxes) until an
actor has a free slot, so a death loses at most `per_actor` jobs' progress and an actor that never starts
(no resources on the cluster) never holds work.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

PROBE_RETRY_S = 1.0


@dataclass
class _Slot:
    index: int
    actor: Any
    alive: bool = False
    dead: bool = False  # gone for good (restarts exhausted, or killed with no_restart)
    inflight: int = 0


@dataclass
class _Pending(Generic[T]):
    payload: Any
    future: Future[T]
    label: str
    retries: int = 0
    history: list[str] = field(default_factory=list)


def _is_actor_loss(error: BaseException) -> bool:
    """Errors that mean the actor (or its node) went away, not that the job failed."""
    import ray.exceptions as rex

    lost = (rex.RayActorError, rex.WorkerCrashedError, rex.OutOfMemoryError, rex.NodeDiedError)
    return isinstance(error, lost)


def _is_permanent_death(error: BaseException) -> bool:
    import ray.exceptions as rex

    return isinstance(error, rex.ActorDiedError) or not isinstance(error, rex.RayActorError)


class ActorDispatcher(Generic[T]):
    """Send `method(payload)` calls to `actors`, at most `per_actor` at a time each, least-loaded first.

    `actors` must have a `ready()` method (answered once the actor is constructed); an actor takes jobs only
    after it answered, and again after a restart. A job whose actor is lost is resubmitted up to
    `max_retries` times; after that (or when every actor is dead for good) its future raises.
    """

    def __init__(
        self,
        actors: Sequence[Any],
        method: str,
        per_actor: int = 2,
        max_retries: int = 3,
        on_ready: Callable[[int, Any], None] | None = None,
    ):
        self._method = method
        self._per_actor = per_actor
        self._max_retries = max_retries
        self._on_ready = on_ready
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._slots = [_Slot(i, actor) for i, actor in enumerate(actors)]
        self._backlog: deque[_Pending[T]] = deque()
        self._closed = False
        self.resubmitted = 0  # jobs sent again after their actor was lost
        self.actor_losses = 0
        self.last_error = ""  # why the last actor was lost for good (shown when none ever starts)
        for slot in self._slots:
            self._probe(slot)

    # ----- public ----------------------------------------------------------------------------------------------
    def submit(self, payload: Any, label: str = "") -> Future[T]:
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            if self._closed:
                raise RuntimeError("dispatcher is closed")
            self._backlog.append(_Pending(payload, future, label))
            self._pump()
        return future

    def wait_ready(self, count: int, timeout_s: float) -> int:
        """Block until `count` actors answered (or timeout); return how many are alive."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.alive_count() >= count or all(s.dead for s in self._slots), timeout_s
            )
            return self.alive_count()

    def alive_count(self) -> int:
        with self._lock:
            return sum(slot.alive for slot in self._slots)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            backlog, self._backlog = list(self._backlog), deque()
        for pending in backlog:
            pending.future.cancel()

    # ----- internals ---------------------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Hand queued jobs to the least-loaded live actors (lock held)."""
        while self._backlog and not self._closed:
            free = [s for s in self._slots if s.alive and s.inflight < self._per_actor]
            if not free:
                break
            slot = min(free, key=lambda s: (s.inflight, s.index))
            pending = self._backlog.popleft()
            slot.inflight += 1
            ref = getattr(slot.actor, self._method).remote(pending.payload)
            ref.future().add_done_callback(lambda f, s=slot, p=pending: self._finished(s, p, f))
        if self._backlog and all(s.dead for s in self._slots):
            self._fail_backlog("every Ray actor died and none can restart")

    def _finished(self, slot: _Slot, pending: _Pending[T], done: Future) -> None:
        error = done.exception()
        with self._lock:
            slot.inflight -= 1
            if error is not None and _is_actor_loss(error) and not self._closed:
                self._actor_lost(slot, error)
                if pending.retries < self._max_retries:
                    pending.retries += 1
                    pending.history.append(f"actor {slot.index}: {type(error).__name__}")
                    self.resubmitted += 1
                    log.warning(
                        "ray actor %d lost (%s); resubmitting %s (retry %d/%d)",
                        slot.index,
                        type(error).__name__,
                        pending.label or "job",
                        pending.retries,
                        self._max_retries,
                    )
                    self._backlog.appendleft(pending)
                    self._pump()
                    return
            self._pump()
        if error is None:
            pending.future.set_result(done.result())
        elif _is_actor_loss(error):
            tried = "; ".join(pending.history)
            pending.future.set_exception(
                RuntimeError(f"{pending.label}: lost {pending.retries + 1} Ray actors ({tried})")
            )
        else:
            pending.future.set_exception(error)

    def _actor_lost(self, slot: _Slot, error: BaseException) -> None:
        """Stop sending to `slot` until it answers a probe again (lock held)."""
        if not slot.alive:
            return
        slot.alive = False
        self.actor_losses += 1
        self._probe(slot)  # a task's ActorDiedError does not say whether Ray restarts the actor; this does

    def _probe(self, slot: _Slot) -> None:
        """Ask the actor to answer `ready()`; Ray holds the call until a restarting actor is back."""
        try:
            ref = slot.actor.ready.remote()
        except Exception as error:
            self._probed(slot, error, None)
            return
        ref.future().add_done_callback(lambda f, s=slot: self._probed(s, f.exception(), f))

    def _probed(self, slot: _Slot, error: BaseException | None, done: Future | None) -> None:
        with self._changed:
            if self._closed:
                return
            if error is None:
                slot.alive = True
                if self._on_ready is not None and done is not None:
                    self._on_ready(slot.index, done.result())
                self._pump()
            elif _is_permanent_death(error):
                slot.dead = True
                self.last_error = str(error)
                log.warning("ray actor %d is gone for good: %s", slot.index, error)
                self._pump()
            else:  # restarting or briefly unreachable: ask again shortly
                timer = threading.Timer(PROBE_RETRY_S, self._probe, args=(slot,))
                timer.daemon = True
                timer.start()
            self._changed.notify_all()

    def _fail_backlog(self, reason: str) -> None:
        backlog, self._backlog = list(self._backlog), deque()
        for pending in backlog:
            pending.future.set_exception(RuntimeError(f"{pending.label}: {reason}"))
