"""export-pairs: every accepted program of a run directory -> verified PyTorch/Triton pairs.

PAIRS_DIR gets pairs.jsonl (one row per verified pair, columns in schema.py), rejected.jsonl (id, entry_point,
category, message, seconds) and meta.json (counts, rates, settings, versions, the source run's config). Ledgers
are appended one durable line at a time, and ids already in them are skipped, so an interrupted export resumes.
Resume guarantees: PAIRS_DIR is locked against a second concurrent export; the verification settings are
recorded in meta.json before any work and a resume with different ones is refused (unless forced), so one
dataset is never verified two ways; a program whose worker crashed or timed out is retried once, in a fresh
worker, before its failure is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synth_modules.config import ConfigError
from synth_modules.export.codefmt import ruff_binary
from synth_modules.export.gpu_workers import WorkerPool
from synth_modules.export.pairing import CheckSettings
from synth_modules.export.programs import ProgramRecord, load_programs, load_run_info
from synth_modules.export.schema import pair_row
from synth_modules.run.lock import DirectoryLock
from synth_modules.run.store import Ledger, atomic_write_json, read_jsonl
from synth_modules.sandbox.isolation import require_landlock

PAIRS_FILE = "pairs.jsonl"
REJECTED_FILE = "rejected.jsonl"
META_FILE = "meta.json"
DEFAULT_TIMEOUT_S = 180.0
TRANSIENT_CATEGORIES = frozenset({"crash", "timeout"})  # a worker's death or a hang: worth one more try


class CudaRequiredError(RuntimeError):
    """Triton pairs need Inductor's CUDA backend; on CPU it writes C++ and there is nothing to export."""


class ResumeSettingsError(ConfigError):
    """PAIRS_DIR holds pairs verified with other settings than this export's."""


@dataclass
class ExportSettings:
    device: str = "cuda"
    jobs: int | None = None  # default: one worker per visible GPU
    limit: int | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    fresh_interpreter: bool = False  # a new worker process per program (slow; for comparison)
    check: CheckSettings = field(default_factory=CheckSettings)
    progress: bool = True
    allow_unsandboxed: bool = False  # run programs even where Landlock is missing (--unsafe-no-landlock)
    force: bool = False  # resume even though the verification settings changed

    def verification(self) -> dict[str, Any]:
        """What decides whether a pair verifies (a resume must match it); timeouts and jobs do not."""
        return {**self.check.to_dict(), "tf32": False}


@dataclass
class ExportSummary:
    attempted: int
    verified: int
    rejected: dict[str, int]
    seconds: float
    pairs_per_minute: float
    total_pairs: int
    env: dict[str, Any]
    mean_program_seconds: float = 0.0  # worker time per program (all outcomes)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # mean per verified pair: eager/capture/...


def _expected_cost(program: ProgramRecord) -> float:
    """How long a program should take to export: its Inductor compile time when it was validated (on CPU,
    but the same graph and kernels), 0 when unknown (a plain folder of programs keeps its order)."""
    timings = program.manifest.get("timings") or {}
    return float(timings.get("compile") or 0.0)


def visible_gpus(device: str) -> list[str]:
    """GPU ids for CUDA_VISIBLE_DEVICES, one per worker slot; raises CudaRequiredError without CUDA."""
    if device != "cuda" and not device.startswith("cuda:"):
        raise CudaRequiredError(
            f"export-pairs captures Triton kernels, which Inductor generates for CUDA devices only; got --device {device}"
        )
    import torch

    if not torch.cuda.is_available():
        raise CudaRequiredError(
            "export-pairs needs a CUDA GPU: Inductor writes Triton kernels only for CUDA devices (on CPU it writes "
            "C++), so there is nothing to capture here. Run export-pairs on a machine with an NVIDIA GPU."
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    ids = ids or [str(i) for i in range(torch.cuda.device_count())]
    if device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        if index >= len(ids):
            raise CudaRequiredError(f"{device} does not exist: {len(ids)} CUDA device(s) visible")
        ids = [ids[index]]
    return ids


def _done_ids(out: Path) -> set[str]:
    return {str(r["id"]) for name in (PAIRS_FILE, REJECTED_FILE) for r in read_jsonl(out / name) if "id" in r}


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="prog", desc="export-pairs", dynamic_ncols=True)


def check_resume_settings(out: Path, settings: ExportSettings) -> None:
    """Refuse to add pairs verified one way to a PAIRS_DIR whose pairs were verified another way."""
    previous = read_meta(out)
    has_rows = any(True for name in (PAIRS_FILE, REJECTED_FILE) for _ in read_jsonl(out / name))
    if not has_rows or settings.force:
        return
    old = previous.get("verification")
    if old is None:  # written before the scaled rule: a fixed rtol/atol on default weights
        old_settings = previous.get("settings", {})
        old = {k: old_settings.get(k) for k in ("rtol", "atol", "verification_seeds")}
    new = json.loads(json.dumps(settings.verification()))
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise ResumeSettingsError(
            f"{out} holds pairs verified with other settings ({details}); use another --out, or --force to "
            "continue it anyway"
        )


def run_with_retry(
    run_batch: Callable[[list[dict[str, Any]]], Iterable[dict[str, Any]]], tasks: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """One final result per task: a crash or timeout is run once more (a new batch, so fresh workers) before
    it counts; the retried result says so in `retried` and its message."""
    first_failures: dict[str, dict[str, Any]] = {}
    for result in run_batch(tasks):
        if result.get("category") in TRANSIENT_CATEGORIES:
            first_failures[str(result["id"])] = result
        else:
            yield result
    if not first_failures:
        return
    for result in run_batch([t for t in tasks if str(t["id"]) in first_failures]):
        first = first_failures[str(result["id"])]
        result = {**result, "retried": True}
        if not result.get("ok"):
            note = f"retried once; first attempt: {first['category']}: {first.get('message', '')}"
            result["message"] = f"{result.get('message', '')} ({note})"
        yield result


def export_pairs(
    output_dir: str | Path, out: str | Path, settings: ExportSettings | None = None
) -> ExportSummary:
    """Capture, clean, wrap and verify every accepted program of `output_dir`; write PAIRS_DIR `out`."""
    settings = settings or ExportSettings()
    output_dir, out = Path(output_dir), Path(out)
    check_resume_settings(out, settings)  # before any work: one dataset, one verification
    gpus = visible_gpus(settings.device)  # no CUDA, no export
    require_landlock(settings.allow_unsandboxed)  # no sandbox, no export (unless the user said so)
    ruff_binary()
    programs = load_programs(output_dir)
    with DirectoryLock(out, "export-pairs"):
        record_verification_settings(out, settings)
        return _export_locked(output_dir, out, settings, gpus, programs)


def _export_locked(
    output_dir: Path, out: Path, settings: ExportSettings, gpus: list[str], programs: list[ProgramRecord]
) -> ExportSummary:
    done = _done_ids(out)
    todo = [p for p in programs if p.id not in done]
    if settings.limit is not None:
        todo = todo[: settings.limit]
    todo.sort(key=_expected_cost, reverse=True)  # longest first: no slow program left alone at the end
    by_id = {p.id: p for p in todo}
    jobs = settings.jobs or len(gpus)
    worker_settings = {"device": "cuda", "check": settings.check.to_dict()}
    tasks = [{"id": p.id, "path": str(p.path.resolve()), "entry_point": p.entry_point} for p in todo]
    verified, rejected = 0, Counter()
    program_seconds: list[float] = []
    stage_totals: Counter[str] = Counter()
    pairs_ledger, rejected_ledger = Ledger(out / PAIRS_FILE), Ledger(out / REJECTED_FILE)
    started = time.perf_counter()
    env: dict[str, Any] = {}

    def run_batch(batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        size = max(1, min(jobs, len(batch)))
        pool = WorkerPool(
            size,
            list(gpus),
            worker_settings,
            settings.timeout_s,
            out / "logs",
            fresh=settings.fresh_interpreter,
            allow_unsandboxed=settings.allow_unsandboxed,
        )
        with pool:
            yield from pool.run(batch)

    try:
        with _progress(len(tasks), settings.progress) as bar:
            for result in run_with_retry(run_batch, tasks) if tasks else []:
                program = by_id[result["id"]]
                program_seconds.append(float(result.get("seconds", 0.0)))
                env = env or {k: v for k, v in result.get("env", {}).items() if k != "pid"}
                if result.get("ok"):
                    pairs_ledger.append(pair_row(program, result))
                    verified += 1
                    stage_totals.update(result.get("timings", {}))
                else:
                    rejected[result["category"]] += 1
                    rejected_ledger.append(
                        {
                            "id": program.id,
                            "entry_point": program.entry_point,
                            "category": result["category"],
                            "message": result.get("message", ""),
                            "seconds": round(float(result.get("seconds", 0.0)), 3),
                            "retried": bool(result.get("retried", False)),
                        }
                    )
                bar.update(1)
                bar.set_postfix(verified=verified, rejected=sum(rejected.values()))
    finally:
        pairs_ledger.close()
        rejected_ledger.close()
    seconds = time.perf_counter() - started
    summary = ExportSummary(
        attempted=len(tasks),
        verified=verified,
        rejected=dict(rejected),
        seconds=seconds,
        pairs_per_minute=verified / seconds * 60.0 if seconds > 0 else 0.0,
        total_pairs=sum(1 for _ in read_jsonl(out / PAIRS_FILE)),
        env=env,
        mean_program_seconds=sum(program_seconds) / len(program_seconds) if program_seconds else 0.0,
        stage_seconds={k: v / verified for k, v in sorted(stage_totals.items())} if verified else {},
    )
    _write_meta(output_dir, out, settings, summary, jobs)
    return summary


def _settings_meta(settings: ExportSettings) -> dict[str, Any]:
    return {
        "device": settings.device,
        "timeout_s": settings.timeout_s,
        "verification_seeds": list(settings.check.seeds),
        "weight_seed": settings.check.weight_seed,
        "tolerances": settings.check.to_dict()["tolerances"],
        "tf32": False,
    }


def record_verification_settings(out: Path, settings: ExportSettings) -> None:
    """meta.json's verification settings, written before the first pair so a killed export still has them."""
    meta = read_meta(out)
    meta.update(verification=settings.verification(), settings=_settings_meta(settings))
    meta.setdefault("created", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    atomic_write_json(out / META_FILE, meta)


def _write_meta(
    output_dir: Path, out: Path, settings: ExportSettings, summary: ExportSummary, jobs: int
) -> None:
    """meta.json: totals over the ledgers (resumes included) plus this session's rate and settings."""
    all_rejected = Counter(str(r.get("category")) for r in read_jsonl(out / REJECTED_FILE))
    previous = read_meta(out)
    meta = {
        "source": {"output_dir": str(output_dir.resolve()), "run": load_run_info(output_dir)},
        "counts": {
            "pairs": summary.total_pairs,
            "rejected": dict(sorted(all_rejected.items())),
            "attempted": summary.total_pairs + sum(all_rejected.values()),
        },
        "last_session": {**asdict(summary), "jobs": jobs, "fresh_interpreter": settings.fresh_interpreter},
        "settings": _settings_meta(settings),
        "verification": settings.verification(),
        "versions": summary.env or previous.get("versions", {}),
        "created": previous.get("created") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "updated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(out / META_FILE, meta)


def format_rejected(rejected: Mapping[str, int]) -> str:
    """`category count, ...` by category name, `none` when empty: one wording for every summary and the card."""
    return ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "none"


def read_meta(pairs_dir: str | Path) -> dict[str, Any]:
    path = Path(pairs_dir) / META_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def read_pairs(pairs_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of PAIRS_DIR/pairs.jsonl (raises if the directory has none)."""
    path = Path(pairs_dir) / PAIRS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run export-pairs first")
    return list(read_jsonl(path))
