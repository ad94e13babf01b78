"""Joining a Ray cluster (or starting a private local one) and shipping our code to its workers.

Kept apart from the executors so the validation executor and the GPU pair exporter connect the same way and
shut down only what they started.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from synth_modules.config import ConfigError

LOCAL_ADDRESSES = frozenset({"", "local"})
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Packages an actor needs to import; shipped with the actor unless the cluster is our own local one.
SHIPPED_PACKAGES = ("synth_modules",)


def import_ray() -> ModuleType:
    """Import Ray or fail with the install hint (Ray is an optional extra)."""
    try:
        import ray
    except ImportError as error:  # pragma: no cover - exercised only where ray is missing
        raise ConfigError("executor=ray needs Ray: pip install 'synth-torch[ray]'") from error
    return ray


@dataclass
class RayConnection:
    """A driver's connection to Ray.

    `owned`: this process called ray.init, so it must call ray.shutdown (which only disconnects from a
    cluster started elsewhere, and stops the private one we started). `local`: the cluster is a private one on
    this machine, whose workers see this checkout, so code travels by PYTHONPATH instead of by upload.
    """

    owned: bool
    local: bool

    def runtime_env(self) -> dict[str, Any]:
        """The actor runtime_env that makes `synth_modules` importable in the actor and its subprocesses."""
        if self.local:
            path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
            return {"env_vars": {"PYTHONPATH": path}}
        import importlib

        return {"py_modules": [importlib.import_module(name) for name in SHIPPED_PACKAGES]}

    def close(self) -> None:
        if self.owned:
            import_ray().shutdown()


def connect(address: str | None, num_cpus: float | None = None) -> RayConnection:
    """Use the Ray connection this process already has, join `address` ("auto" or host:port, or
    ray://host:10001 for Ray Client), or start a private local cluster sized for `num_cpus` when address is
    None or "local"."""
    ray = import_ray()
    if ray.is_initialized():
        return RayConnection(owned=False, local=False)
    if address is None or address in LOCAL_ADDRESSES:
        cpus = max(1, math.ceil(num_cpus)) if num_cpus else None
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
        return RayConnection(owned=True, local=True)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as error:
        raise ConfigError(
            f"ray_address={address!r}: no Ray cluster answered ({error}). Start one with `ray start --head` "
            "or pass ray_address=local for a private cluster on this machine."
        ) from error
    return RayConnection(owned=True, local=False)
