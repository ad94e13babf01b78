"""A GPU worker process: `python -m synth_modules.export.worker --settings JSON`.

It imports torch once, warms Inductor and Triton up, announces itself with a `ready` line, then reads one task
(JSON) per stdin line and answers one result line each, until stdin closes. Only the protocol is written to the
real stdout: anything the programs, Inductor or Triton print (even from C) lands on stderr, which the pool sends
to a log file. The pool (gpu_workers.py) owns timeouts and crashes; a worker just does one program at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO


def _protocol_stream() -> TextIO:
    """Keep a private handle on stdout for the protocol and point fd 1 (and sys.stdout) at stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def _environment(device: str) -> dict[str, Any]:
    import torch

    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:  # CPU-only installs (the pool's own tests) have no Triton
        triton_version = None
    on_gpu = torch.device(device).type == "cuda"
    return {
        "torch_version": torch.__version__,
        "triton_version": triton_version,
        "gpu_name": torch.cuda.get_device_name(torch.device(device)) if on_gpu else "cpu",
        "pid": os.getpid(),
    }


def _prepare(device: str, warmup: bool) -> None:
    """Strict float32 (no TF32) for honest comparisons, and a tiny compile so the first program pays no warm-up."""
    import torch
    import torch._dynamo
    import torch._inductor.compile_fx

    import synth_modules.export.pairing  # noqa: F401 -- imported before `ready`, never inside a task's timeout

    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if warmup:
        probe = torch.compile(lambda x: torch.relu(x) * 2.0 + x.sum())
        probe(torch.randn(64, device=device))
        torch._dynamo.reset()


def _run_task(task: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    import torch

    from synth_modules.export.errors import ExportError
    from synth_modules.export.pairing import CheckSettings, make_pair

    check = CheckSettings.from_dict(settings.get("check", {}))
    started = time.perf_counter()
    reply: dict[str, Any] = {"id": task["id"]}
    if settings.get("mode") == "seed":
        return _run_seed(task, settings, started)
    try:
        result = make_pair(
            Path(task["path"]), task["entry_point"], settings["device"], Path(settings["workdir"]), check
        )
        reply.update(ok=True, **dataclasses.asdict(result))
    except ExportError as error:
        reply.update(ok=False, category=str(error.category), message=error.message)
    except torch.cuda.OutOfMemoryError as error:
        reply.update(ok=False, category="memory_limit", message=str(error)[:2000])
    except Exception as error:  # a bug of ours or an odd program: report it, keep the worker alive
        reply.update(ok=False, category="crash", message=f"{type(error).__name__}: {error}"[:2000])
        traceback.print_exc()
    finally:
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    reply["seconds"] = time.perf_counter() - started
    return reply


def _run_seed(task: dict[str, Any], settings: dict[str, Any], started: float) -> dict[str, Any]:
    """export-seeds --device: rescale, re-validate, filter and time one task (seed_measure.py)."""
    import torch

    from synth_modules.export.seed_measure import Drop, measure_seed

    reply: dict[str, Any] = {"id": task["id"]}
    try:
        record = measure_seed(Path(task["path"]), task["entry_point"], settings, Path(settings["workdir"]))
        reply.update(ok=True, **record)
    except Drop as drop:
        reply.update(drop.record, ok=False, category=drop.reason, message=drop.message[:2000])
        reply.pop("task_source", None)
    except torch.cuda.OutOfMemoryError as error:
        reply.update(ok=False, category="memory", message=str(error)[:2000])
    except Exception as error:  # the program's own failure at these sizes, or a bug of ours: report, go on
        reply.update(ok=False, category="invalid", message=f"{type(error).__name__}: {error}"[:2000])
        traceback.print_exc()
    finally:
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    reply["seconds"] = time.perf_counter() - started
    return reply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", required=True, help="JSON: device, workdir, warmup, check")
    settings = json.loads(parser.parse_args(argv).settings)
    protocol = _protocol_stream()
    Path(settings["workdir"]).mkdir(parents=True, exist_ok=True)
    _prepare(settings["device"], bool(settings.get("warmup", True)))
    env = _environment(settings["device"])
    protocol.write(json.dumps({"ready": True, "env": env}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        reply = _run_task(task, settings)
        reply["env"] = env
        protocol.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
