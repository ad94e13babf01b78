"""Can a confined GPU worker initialise CUDA here? Run this first in a GPU session (about 30 s).

    python benchmarks/sandbox_gpu_preflight.py

Starts export-pairs' worker (sandbox/service.py + export/worker.py, which compiles one Triton kernel in its
warm-up) twice: with the GPU recipe spawn_isolated uses by default (torch imported before confinement, uid 0
without capabilities, no network namespace) and with the full CPU recipe (switch to `nobody`, empty network
namespace, torch imported after confinement), which failed with CUDA error 304 on the H200 host. Prints each
one's isolation report or the end of its log.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_modules.sandbox.spawn import WorkerFailure, spawn_isolated


def main() -> None:
    for compatible in (True, False):
        worker = spawn_isolated(
            "synth_modules.export.worker",
            {"device": "cuda", "warmup": True},
            gpu=True,
            gpu_compatible=compatible,
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
        print(json.dumps({"gpu_recipe": compatible, **outcome}), flush=True)


if __name__ == "__main__":
    main()
