"""Timing: warm-up, L2 flush, device-wide sync, CUDA events cross-checked by the host clock, median + IQR.

Candidate and baseline are measured interleaved (alternating order every repetition) in one process, so drift
and clock changes hit both alike. The synchronise and clock functions are captured when this module is
imported, before any candidate code exists, so a candidate that patches them cannot change what is measured
(the integrity snapshot reports the patch as a hack anyway). On CPU the host clock is the only clock.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

_perf_counter_ns = time.perf_counter_ns
_cuda_synchronize = getattr(torch._C, "_cuda_synchronize", None)  # device-wide: waits for every stream
_Event = torch.cuda.Event
_FLUSH_CPU_BYTES = 32 << 20


@dataclass(frozen=True)
class TimingSettings:
    warmup: int = 5
    min_reps: int = 30
    max_reps: int = 200
    budget_s: float = 2.0  # time the repetitions of one callable may take, beyond min_reps
    flush_l2: bool = True
    excessive_speedup: float = 3.0  # wins above this are re-measured in isolation and flagged


@dataclass
class Stats:
    median_us: float
    iqr_us: float
    reps: int
    event_median_us: float | None
    host_median_us: float
    clock: str  # "cuda_events", "host" (CPU), or "host_override" (events missed work: host time used)

    def to_dict(self) -> dict:
        return asdict(self)


class DeviceTimer:
    """Times one callable on one device, one repetition at a time."""

    def __init__(self, device: str, flush_l2: bool = True):
        self.device = device
        self.cuda = device.startswith("cuda")
        self._flush_buffer: torch.Tensor | None = None
        if flush_l2:
            if self.cuda:
                l2 = int(
                    getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 64 << 20) or 64 << 20
                )
                self._flush_buffer = torch.empty(2 * l2 // 4 + 1, dtype=torch.int32, device=device)
            else:
                self._flush_buffer = torch.empty(_FLUSH_CPU_BYTES // 4, dtype=torch.int32)

    def synchronize(self) -> None:
        if self.cuda:
            _cuda_synchronize()

    def flush(self) -> None:
        if self._flush_buffer is not None:
            self._flush_buffer.zero_()

    def once(self, fn: Callable[[], object]) -> tuple[float | None, float]:
        """(CUDA-event microseconds or None, host microseconds) of one call, caches flushed first."""
        self.flush()
        self.synchronize()
        if not self.cuda:
            start = _perf_counter_ns()
            fn()
            return None, (_perf_counter_ns() - start) / 1e3
        begin, end = _Event(enable_timing=True), _Event(enable_timing=True)
        start = _perf_counter_ns()
        begin.record()
        fn()
        end.record()
        _cuda_synchronize()
        host_us = (_perf_counter_ns() - start) / 1e3
        return begin.elapsed_time(end) * 1e3, host_us


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarize(events: list[float | None], hosts: list[float]) -> Stats:
    """Median and IQR; CUDA events unless the host clock says the events missed work (then host time)."""
    host_q = _quartiles(hosts)
    if not events or events[0] is None:
        return Stats(host_q[1], host_q[2] - host_q[0], len(hosts), None, host_q[1], "host")
    event_values = [float(e) for e in events if e is not None]
    event_q = _quartiles(event_values)
    # Host time adds only the sync latency to the events (they enclose every launch on the stream); much more
    # means work ran outside the timed stream and finished only at the device-wide sync.
    if host_q[1] > 1.5 * event_q[1] + 50.0:
        return Stats(host_q[1], host_q[2] - host_q[0], len(hosts), event_q[1], host_q[1], "host_override")
    return Stats(event_q[1], event_q[2] - event_q[0], len(hosts), event_q[1], host_q[1], "cuda_events")


def _rep_count(timer: DeviceTimer, fns: dict[str, Callable[[], object]], settings: TimingSettings) -> int:
    per_round = 0.0
    for fn in fns.values():
        for _ in range(max(1, settings.warmup)):
            _, host_us = timer.once(fn)
        per_round += host_us
    reps = int(settings.budget_s * 1e6 / max(per_round, 1.0))
    return max(settings.min_reps, min(settings.max_reps, reps))


def measure_interleaved(
    fns: dict[str, Callable[[], object]],
    device: str,
    settings: TimingSettings,
    timer: DeviceTimer | None = None,
) -> dict[str, Stats]:
    """Warm up, then time every callable once per round, alternating the order each round."""
    timer = timer or DeviceTimer(device, settings.flush_l2)
    reps = _rep_count(timer, fns, settings)
    names = list(fns)
    events: dict[str, list[float | None]] = {n: [] for n in names}
    hosts: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            event_us, host_us = timer.once(fns[name])
            events[name].append(event_us)
            hosts[name].append(host_us)
    return {n: summarize(events[n], hosts[n]) for n in names}


def measure_each(
    fns: dict[str, Callable[[], object]],
    device: str,
    settings: TimingSettings,
    timer: DeviceTimer | None = None,
) -> dict[str, Stats]:
    """Each callable in its own block of repetitions (the re-measurement of suspiciously large wins)."""
    timer = timer or DeviceTimer(device, settings.flush_l2)
    return {name: measure_interleaved({name: fn}, device, settings, timer)[name] for name, fn in fns.items()}
