"""Joining a Ray cluster (or starting a private local one) and shipping our code to its workers.

Kept apart from the executor so that connecting, shipping code and shutting down only what this process started
live in one place, reusable by any other Ray-backed stage.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from synth_modules.config import ConfigError

log = logging.getLogger(__name__)

LOCAL_ADDRESSES = frozenset({"", "local"})
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Packages an actor needs to import; uploaded to a cluster we join (a local one reads this checkout).
SHIPPED_PACKAGES = ("synth_modules", "kernel_search")


def import_ray() -> ModuleType:
    """Import Ray or fail with the install hint (Ray is an optional extra)."""
    try:
        import ray
    except ImportError as error:  # pragma: no cover - exercised only where ray is missing
        raise ConfigError("executor=ray needs Ray: pip install 'synth-torch[ray]'") from error
    return ray


def _local_pythonpath() -> dict[str, Any]:
    """A runtime_env putting this checkout first on PYTHONPATH (actors on this machine, and their subprocesses,
    import the driver's code without an upload)."""
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def _shipped_code() -> dict[str, Any]:
    """A job-level runtime_env uploading our packages, so every node validates with the driver's code version
    (Ray accepts local directories only at the job level, in ray.init)."""
    return {"py_modules": [str(PROJECT_ROOT / name) for name in SHIPPED_PACKAGES]}


@dataclass
class RayConnection:
    """A driver's connection to Ray.

    `owned`: this process called ray.init, so it must call ray.shutdown (which only disconnects from a
    cluster started elsewhere, and stops the private one we started). `actor_env`: the runtime_env our actors
    need on top of the job's, so that `synth_modules` imports in them and in their subprocesses.
    """

    owned: bool
    actor_env: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        if self.owned:
            import_ray().shutdown()


def start_local_cluster(num_cpus: int | None, attempts: int = 2) -> None:
    """Start a private single-node Ray instance, retrying a failed start once.

    Ray's raylet gives its metrics agent a fixed 15 s to come up and aborts otherwise (ray-project/ray#65983);
    on a machine whose CPUs are saturated the agent's imports can take longer, and a second try often wins.
    """
    ray = import_ray()
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=True,
            )
            return
        except Exception as error:
            if "timed out during startup" not in str(error) or attempt == attempts:
                raise
            log.warning("Ray did not start (%s); trying again (%d/%d)", error, attempt + 1, attempts)
            ray.shutdown()


def connect(address: str | None, num_cpus: float | None = None) -> RayConnection:
    """Use the Ray connection this process already has, join `address` ("auto" or host:port, or
    ray://host:10001 for Ray Client), or start a private local cluster sized for `num_cpus` when address is
    None or "local"."""
    ray = import_ray()
    if ray.is_initialized():
        # The caller connected (and owns the connection); PYTHONPATH covers a cluster on this machine, and a
        # remote one needs the package installed or shipped in the caller's runtime_env.
        return RayConnection(owned=False, actor_env=_local_pythonpath())
    if address is None or address in LOCAL_ADDRESSES:
        start_local_cluster(max(1, math.ceil(num_cpus)) if num_cpus else None)
        return RayConnection(owned=True, actor_env=_local_pythonpath())
    try:
        ray.init(address=address, runtime_env=_shipped_code(), logging_level=logging.WARNING)
    except ConnectionError as error:
        raise ConfigError(
            f"ray_address={address!r}: no Ray cluster answered ({error}). Start one with `ray start --head` "
            "or pass ray_address=local for a private cluster on this machine. A cluster with token "
            "authentication (the default for `ray start` since Ray 2.59) also needs RAY_AUTH_MODE=token and its "
            "token (RAY_AUTH_TOKEN or ~/.ray/auth_token) in the driver's environment."
        ) from error
    return RayConnection(owned=True)
