"""Can a confined GPU worker initialise CUDA here? Run this first in a GPU session (about 30 s).

    python benchmarks/sandbox_gpu_preflight.py

Starts export-pairs' worker (sandbox/service.py + export/worker.py, which compiles one Triton kernel in its
warm-up) under three recipes and prints each one's isolation report or the end of its log:
  1. the default: CUDA context created in the handler's trusted `prepare`, then confined (uid 0 without
     capabilities, no network namespace, Landlock) -- the kernel evaluator's order, which worked on the H200;
  2. the GPU recipe with CUDA initialised only after confinement (torch imported before it);
  3. the full CPU recipe (switch to `nobody`, empty network namespace, torch imported after confinement),
     which failed with CUDA error 304 on the H200 host (2026-12-02).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_modules.sandbox.spawn import WorkerFailure, spawn_isolated


def main() -> None:
    recipes = {
        "cuda_then_confine": {"gpu_compatible": True, "prepare_before_confinement": True},
        "confine_then_cuda": {"gpu_compatible": True, "prepare_before_confinement": False},
        "full_cpu_recipe": {"gpu_compatible": False, "prepare_before_confinement": False},
    }
    for name, recipe in recipes.items():
        worker = spawn_isolated(
            "synth_modules.export.worker", {"device": "cuda", "warmup": True}, gpu=True, **recipe
        )
        try:
            ready = worker.wait_ready(timeout=180)
            outcome = {
                "ready": True,
                "isolation": ready.get("isolation"),
                "gpu": ready.get("info", {}).get("gpu_name"),
            }
        except WorkerFailure as error:
            outcome = {"ready": False, "error": str(error), "log": worker.log_tail()}
        finally:
            worker.close(kill=True)
        print(json.dumps({"recipe": name, **outcome}), flush=True)


if __name__ == "__main__":
    main()
