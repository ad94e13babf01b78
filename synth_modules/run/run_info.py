"""What run.json records besides the config: versions of everything that shapes the data, prompt hashes."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import socket
import sys
import time
from importlib import resources
from typing import Any

from synth_modules import __version__
from synth_modules.config import GeneratorConfig

_PACKAGES = ("torch", "triton", "numpy", "openai", "google-genai", "datasets", "datasketch", "ray")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "synth-torch": __version__}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def prompt_hashes() -> dict[str, str]:
    """sha256 of every prompt template, so a dataset can be traced to the exact prompts that made it."""
    hashes: dict[str, str] = {}
    try:
        folder = resources.files("prompts")
    except ModuleNotFoundError:
        return hashes
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            hashes[entry.name] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return hashes


def collect_run_info(config: GeneratorConfig) -> dict[str, Any]:
    return {
        "versions": package_versions(),
        "prompt_hashes": prompt_hashes(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "started_at": time.time(),
    }
