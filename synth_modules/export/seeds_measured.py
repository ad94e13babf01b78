"""export-seeds --profile P --device D: seed tasks rescaled, re-validated, filtered and timed on the device.

Each program goes to an export worker (a subprocess with a per-program timeout; a crash costs one program) that
runs seed_measure.measure_seed. Kept tasks are written as `N_<EntryPoint>.py`, N by rank: the most headroom
(best of eager and compiled time over the roofline time) first. index.json lists the tasks with their
measurements, and every dropped program with its reason (launch_bound, degenerate, memory, invalid, timeout, ...)
and whatever was measured before it was dropped.
"""

from __future__ import annotations

import collections
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from synth_modules.export.gpu_workers import WorkerPool
from synth_modules.export.pairs import visible_gpus
from synth_modules.export.programs import load_programs
from synth_modules.export.seeds import INDEX_FILE, KERNELBENCH_CLASS, SeedsExport
from synth_modules.run.store import atomic_write_json

_SUMMARY_KEYS = (
    "eager_us",
    "compiled_us",
    "cuda_graph_us",
    "graph_speedup",
    "headroom_eager",
    "headroom_compiled",
)


class _Stopped(Exception):
    """SIGTERM during the export: stop handing out programs, write what was measured."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def headroom(task: dict[str, Any]) -> float:
    """How far the best baseline (eager or compiled) is from the roofline time."""
    values = [v for v in (task.get("headroom_eager"), task.get("headroom_compiled")) if v]
    return min(values) if values else 0.0


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)
    q = statistics.quantiles(values, n=10, method="inclusive") if len(values) >= 10 else [values[0]] * 9
    return {
        "min": values[0],
        "p10": q[0],
        "median": statistics.median(values),
        "p90": q[8],
        "max": values[-1],
    }


def export_measured_seeds(
    output_dir: str | Path,
    out: str | Path,
    profile: str,
    device: str,
    jobs: int = 1,
    timeout_s: float = 300.0,
    limit: int | None = None,
    timing_budget_s: float = 1.0,
) -> SeedsExport:
    """Measure every accepted program of `output_dir` on `device` at `profile`'s sizes; write the kept tasks."""
    gpus: list[str | None] = list(visible_gpus(device)) if device.startswith("cuda") else [None]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    programs = load_programs(output_dir)[:limit]
    by_id = {p.id: p for p in programs}
    tasks = [{"id": p.id, "path": str(p.path.resolve()), "entry_point": p.entry_point} for p in programs]
    lock = Path(tempfile.mkdtemp(prefix="synth-seeds-")) / "timing.lock"
    settings = {
        "mode": "seed",
        "device": "cuda" if device.startswith("cuda") else device,
        "profile": profile,
        "timing_lock": str(lock),
        "timing_budget_s": timing_budget_s,
    }
    kept: list[dict[str, Any]] = []
    result = SeedsExport()
    started = time.perf_counter()
    interrupted = False
    previous = signal.signal(signal.SIGTERM, _stop)  # `timeout` or a scheduler: keep what was measured
    try:
        with WorkerPool(jobs, gpus, settings, timeout_s, out / "logs") as pool:
            try:
                for reply in pool.run(tasks):
                    program = by_id.get(reply.get("id"))
                    base = {"id": reply.get("id"), "entry_point": program.entry_point if program else None}
                    reply.pop("env", None)
                    if reply.get("ok"):
                        kept.append({**base, "ops": program.ops if program else [], **reply})
                    else:
                        result.skipped.append({**base, "reason": reply.get("category"), **reply})
            except _Stopped:
                interrupted = True
            env = pool.stats.env
    finally:
        signal.signal(signal.SIGTERM, previous)
    kept.sort(key=headroom, reverse=True)
    for rank, task in enumerate(kept, start=1):
        name = f"{rank}_{task['entry_point']}.py"
        (out / name).write_text(task.pop("task_source"), encoding="utf-8")
        task.pop("ok", None)
        result.tasks.append({"index": rank, "file": name, "headroom": headroom(task), **task})
    dropped = collections.Counter(s["reason"] for s in result.skipped)
    atomic_write_json(
        out / INDEX_FILE,
        {
            "format": "kernelbench",
            "source": str(Path(output_dir).resolve()),
            "class_name": KERNELBENCH_CLASS,
            "profile": profile,
            "device": device,
            "gpu_name": env.get("gpu_name"),
            "torch_version": env.get("torch_version"),
            "count": len(result.tasks),
            "attempted": len(kept) + len(result.skipped),
            "interrupted": interrupted,
            "dropped": dict(dropped),
            "seconds": round(time.perf_counter() - started, 1),
            "summary": {
                key: _quantiles([t[key] for t in result.tasks if t.get(key) is not None])
                for key in _SUMMARY_KEYS
            },
            "tasks": result.tasks,
            "skipped": result.skipped,
        },
    )
    return result
