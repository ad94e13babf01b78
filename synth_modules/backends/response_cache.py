"""On-disk cache of raw LLM answers, so a resumed or repeated run never pays twice for the same request.

The key covers everything that shapes an answer (backend, model, rendered prompt, temperature, max_tokens)
plus the sample id and attempt: two samples with the same prompt still get their own draws. The cache stores
the provider's raw answer, not the parsed program, so parser fixes apply to cached answers too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from synth_modules.config import GeneratorConfig

CACHE_FORMAT = 1


def default_cache_dir(config: GeneratorConfig) -> Path:
    """`<cache_dir>/llm`, with cache_dir defaulting to `<output_dir>/.cache`."""
    root = Path(config.cache_dir).expanduser() if config.cache_dir else config.output_path / ".cache"
    return root / "llm"


def cache_key(
    *,
    backend: str,
    model: str,
    prompt: str,
    temperature: float,
    max_tokens: int,
    sample_id: str,
    attempt: int,
) -> str:
    payload = json.dumps(
        {
            "format": CACHE_FORMAT,
            "backend": backend,
            "model": model,
            "prompt": prompt,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "sample_id": sample_id,
            "attempt": attempt,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """One JSON file per answer under `directory/<key[:2]>/<key>.json`, written atomically."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record, or None when absent or unreadable (a torn file is just a miss)."""
        try:
            record = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(record, stream)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
