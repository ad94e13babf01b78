"""Confining one process that is about to run untrusted code, the same way on every path.

Two callers: a forked child of a warm CPU worker (validation, deduction, seeds), and a spawned GPU worker that
confines itself before it imports torch and initialises CUDA (export-pairs, the kernel evaluator). Landlock is
required: without it `require_landlock` refuses, unless the user passed the explicit unsafe flag
(`allow_unsandboxed=true`, `--unsafe-no-landlock`), which prints a warning once.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from typing import Any

from synth_modules.sandbox import landlock, limits

UNSAFE_FLAG = "--unsafe-no-landlock"
UNSAFE_KEY = "allow_unsandboxed"
UNSAFE_ENV = "SYNTH_TORCH_UNSAFE_NO_LANDLOCK"  # =1: the same as the flag, for every command of a session
_MAX_NEW_PROCESSES = 1024  # tasks (threads count): a fork bomb stops here; CUDA and compilers need some
_warned = False


class SandboxUnavailableError(RuntimeError):
    """Landlock is missing and the user did not accept running untrusted code without it."""


def require_landlock(allow_unsandboxed: bool) -> int:
    """The kernel's Landlock ABI; raises SandboxUnavailableError when it is 0 and the flag is not given.

    Callers pass what the user chose; the UNSAFE_ENV variable counts as that choice too. A caller that gets 0
    back must tell its confined processes (`Confinement.allow_unsandboxed`), which refuse on their own.
    """
    global _warned
    abi = landlock.abi_version()
    if abi > 0:
        return abi
    if not (allow_unsandboxed or os.environ.get(UNSAFE_ENV) == "1"):
        raise SandboxUnavailableError(
            "Landlock (Linux >= 5.13 with the landlock LSM enabled) is not available here, so untrusted "
            "programs could write files outside their directory and read files of this user; refusing to run "
            f"them. Pass {UNSAFE_FLAG} (config key {UNSAFE_KEY}=true, or {UNSAFE_ENV}=1) to run them without "
            "it anyway."
        )
    if not _warned:
        _warned = True
        print(
            f"WARNING: {UNSAFE_FLAG}: running untrusted programs WITHOUT Landlock: they can write wherever "
            "their (dropped) user may and read this machine's files; only the environment allow-list, the "
            "privilege drop, rlimits and process-group kill still apply.",
            file=sys.stderr,
            flush=True,
        )
    return 0


@dataclass
class Privileges:
    """How a confined process gives up its rights: become `ids` (nobody), or stay uid 0 without capabilities."""

    ids: tuple[int, int] | None
    drop_caps: bool

    def describe(self) -> str:
        if self.ids:
            return f"uid {self.ids[0]}"
        return "uid 0 without capabilities" if self.drop_caps else f"uid {os.geteuid()} (unchanged)"


def _origin(module: str) -> str | None:
    spec = importlib.util.find_spec(module)
    return spec.origin if spec is not None else None


def decide_privileges(readable: list[str] | None = None, gpu: bool = False) -> Privileges:
    """`nobody` when root and `nobody` can read the interpreter, torch and `readable`; else drop capabilities.

    Finds torch without importing it, so a GPU worker can decide before CUDA exists in its process.
    """
    paths = [os.__file__, sysconfig.get_paths()["include"], sys.executable, _origin("torch") or ""]
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if os.path.isdir(p)]
    paths += [package_root, os.path.join(package_root, "synth_modules", "sandbox"), *python_path]
    devices = limits.gpu_device_files() if gpu else []
    ids = limits.unprivileged_ids([p for p in paths + (readable or []) if p], devices)
    return Privileges(ids=ids, drop_caps=ids is None and os.geteuid() == 0)


@dataclass
class Confinement:
    """What one confined process may do: write beneath `write_roots`, read system paths plus `read_roots`."""

    write_roots: list[str]
    read_roots: list[str] = field(default_factory=list)
    address_space_mb: int | None = None  # RLIMIT_AS above the current size; None on CUDA (huge reservations)
    cpu_seconds: int | None = None
    gpu: bool = False
    allow_unsandboxed: bool = False
    network_namespace: bool = True  # an empty one, when root (GPU workers: off, see spawn_isolated)


def confine(confinement: Confinement, privileges: Privileges) -> dict[str, Any]:
    """Apply every layer, in the order their requirements impose; returns what was applied.

    Raises SandboxUnavailableError (before any program code runs) when Landlock cannot be applied and the
    unsafe flag was not given, so a caller that forgets the parent-side check still fails closed.
    """
    applied: dict[str, Any] = {}
    applied["netns"] = confinement.network_namespace and os.geteuid() == 0 and limits.new_network_namespace()
    if confinement.address_space_mb is not None:
        limits.set_memory_limit(confinement.address_space_mb)
    # RLIMIT_NPROC counts every task (thread) of the uid: `nobody` runs only sandboxes, uid 0 everything else.
    uid = privileges.ids[0] if privileges.ids else os.geteuid()
    limits.set_process_limits(
        cpu_seconds=confinement.cpu_seconds,
        max_processes=limits.task_count(uid) + _MAX_NEW_PROCESSES,
    )
    if privileges.ids:
        limits.drop_privileges(privileges.ids)
    elif privileges.drop_caps:
        limits.drop_capabilities()
    applied["user"] = privileges.describe()
    limits.die_with_parent()
    writable = [*confinement.write_roots, os.devnull]
    if confinement.gpu:
        writable += limits.gpu_device_files()
    applied["landlock"] = landlock.restrict(limits.read_roots(confinement.read_roots), writable)
    if applied["landlock"] == 0 and not confinement.allow_unsandboxed:
        raise SandboxUnavailableError("Landlock could not be applied; refusing to run the program")
    return applied
