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
