"""The environment of every process that runs untrusted code: an allow-list, not a list of secret names.

A deny-list misses whatever secret a user names unusually (`MY_SERVICE_PW`, `DB_URL` with a password in it);
an allow-list passes only what the interpreter, the compilers, CUDA, Triton and Inductor read. The secret name
patterns in `limits.is_secret` stay as a second net: a name matching an allowed prefix that looks like a secret
(`TRITON_TOKEN`) is still dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from synth_modules.sandbox.limits import is_secret

# Exact names passed through when the parent has them.
ALLOWED_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "PYTHONPATH",  # paths only; the pool prepends the package root
        "CC",
        "CXX",
        "CPATH",
        "LIBRARY_PATH",
        "LD_LIBRARY_PATH",  # CUDA and compiler runtime libraries
        "CUDA_HOME",
        "CUDA_PATH",
        "CUDA_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    }
)
# Prefixes of configuration the run needs: locale, CUDA, Triton, Inductor/Dynamo, PyTorch's allocator.
ALLOWED_PREFIXES = (
    "LC_",
    "CUDA_",
    "TRITON_",
    "TORCHINDUCTOR_",
    "TORCHDYNAMO_",
    "TORCH_",
    "PYTORCH_",
    "NCCL_",  # a host may require settings such as NCCL_NVLS_ENABLE=0 in every process
    "NVSHMEM_",
)
# Never inherited even when allowed above: they would point the sandbox's caches or home at shared places.
OVERRIDDEN = (
    "HOME",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "TORCHINDUCTOR_CACHE_DIR",
    "TRITON_CACHE_DIR",
    "TRITON_HOME",
)


def is_allowed(name: str) -> bool:
    """Whether the variable `name` may reach untrusted code."""
    if is_secret(name) or name in OVERRIDDEN:
        return False
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def sandbox_environment(
    home: str, environ: Mapping[str, str] | None = None, **overrides: str
) -> dict[str, str]:
    """The allowed part of `environ` (default os.environ), with HOME, TMPDIR and caches inside `home`."""
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if is_allowed(name)}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        HOME=home,
        TMPDIR=home,
        XDG_CACHE_HOME=os.path.join(home, ".cache"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        PYTHONNOUSERSITE="1",  # a user site-packages under the real HOME is not the sandbox's to import
    )
    env.update(overrides)
    return env


def device_environment(visible_devices: str | None, heap_perturb: int | None = None) -> dict[str, str]:
    """What pins a worker to its devices, added to `sandbox_environment`.

    `visible_devices`: "" for a CPU worker (no GPU at all), "2" for its one GPU (cuda:0 inside), None to keep
    the allow-listed value. `heap_perturb`: glibc's MALLOC_PERTURB_, so every fresh malloc is filled with the
    complement of this byte whatever the heap's history: uninitialised CPU memory is a known pattern (the
    kernel evaluator's stale-memory check), since glibc's reuse of freed blocks cannot be steered from Python.
    """
    env: dict[str, str] = {}
    if visible_devices == "":
        env.update(CUDA_VISIBLE_DEVICES="", HIP_VISIBLE_DEVICES="")
    elif visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible_devices
    if heap_perturb is not None:
        if not 0 < heap_perturb < 256:
            raise ValueError(f"heap_perturb must be a byte value 1..255, not {heap_perturb}")
        env["MALLOC_PERTURB_"] = str(heap_perturb)
    return env
