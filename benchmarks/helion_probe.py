"""Does a Helion release run on this host's torch, and does its autotuner find a config? Prints JSON lines.

    python benchmarks/helion_probe.py SITE_DIR [--variant NAME] [--budget-s 15]

SITE_DIR holds one helion release (pip install --target). Variants run an elementwise add (the smallest
Helion kernel) so a failure is Helion's, not the kernel's: `import` only imports; `fixed` runs one explicit
config (codegen + launch, no autotuner); `autotune` runs Helion's own autotuner with default settings;
`autotune-inprocess` the same with its benchmark subprocess and fork precompile turned off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

VARIANT_ENV = {
    "import": {},
    "fixed": {},
    "autotune": {},
    "autotune-inprocess": {"HELION_AUTOTUNE_BENCHMARK_SUBPROCESS": "0", "HELION_AUTOTUNE_PRECOMPILE": "0"},
}


_KERNEL = """\
import torch
import helion
import helion.language as hl


@helion.kernel(KWARGS)
def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(a)
    for tile in hl.tile(a.size(0)):
        out[tile] = a[tile] + b[tile]
    return out
"""


def _kernel_module(variant: str):
    """The add kernel in a module file of its own (Helion reads the kernel's source and its globals)."""
    import importlib.util
    import tempfile

    fixed = "configs=[helion.Config(block_sizes=[1024], num_warps=4, num_stages=1)]"
    kwargs = fixed if variant == "fixed" else 'autotune_effort="quick"'
    path = os.path.join(tempfile.mkdtemp(prefix="helion-probe-"), "helion_probe_add.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(_KERNEL.replace("KWARGS", kwargs))
    spec = importlib.util.spec_from_file_location("helion_probe_add", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(variant: str, budget_s: float) -> dict:
    started = time.monotonic()
    record: dict = {"variant": variant}
    try:
        import torch

        record["torch"] = torch.__version__
        import helion

        record["helion"] = getattr(helion, "__version__", "?")
        if variant == "import":
            record["status"] = "ok"
            return record
        add = _kernel_module(variant).add  # at module level: Helion refuses kernels that are closures

        a = torch.randn(1 << 24, device="cuda")
        b = torch.randn(1 << 24, device="cuda")
        result = add(a, b)
        torch.cuda.synchronize()
        record["correct"] = bool(torch.allclose(result, a + b))
        bound = add.bind((a, b))
        record["config"] = str(getattr(bound, "_config", None) or getattr(bound, "config", None))
        from triton.testing import do_bench

        record["helion_us"] = round(do_bench(lambda: add(a, b)) * 1000, 2)
        record["torch_us"] = round(do_bench(lambda: a + b) * 1000, 2)
        record["status"] = "ok"
    except BaseException as error:  # the probe's job is to report the failure, whatever it is
        record["status"] = "error"
        record["error"] = f"{type(error).__name__}: {error}"[-1500:]
        record["traceback_tail"] = traceback.format_exc()[-2500:]
    finally:
        record["seconds"] = round(time.monotonic() - started, 1)
    return record


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("site_dir")
    parser.add_argument("--variant", choices=sorted(VARIANT_ENV), default="import")
    parser.add_argument("--budget-s", type=float, default=15.0)
    args = parser.parse_args()
    os.environ.update(VARIANT_ENV[args.variant])
    os.environ.setdefault("HELION_AUTOTUNE_BUDGET_SECONDS", str(int(args.budget_s)))
    os.environ.setdefault("HELION_AUTOTUNE_LOG_LEVEL", "WARNING")
    sys.path.insert(0, args.site_dir)
    print(json.dumps(run(args.variant, args.budget_s)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
