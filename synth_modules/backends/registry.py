"""Map a `model_name` to the backend that serves it; imports SDKs only when that backend is chosen."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synth_modules.backends.base import Backend
    from synth_modules.config import GeneratorConfig

_OPENAI_PATTERN = re.compile(r"^(gpt-|o\d|chatgpt-|openai[:/])")
_GEMINI_PATTERN = re.compile(r"^(gemini|models/gemini|gemini[:/])")


def resolve_backend_kind(model_name: str) -> str | None:
    """builtin | gemini | openai | local, or None for a name no backend serves."""
    name = model_name.strip().lower()
    if name == "builtin":
        return "builtin"
    if name == "local" or name.startswith("local:"):
        return "local"
    if _GEMINI_PATTERN.match(name):
        return "gemini"
    if _OPENAI_PATTERN.match(name):
        return "openai"
    return None


def describe_model_names() -> str:
    return (
        "use 'builtin' (offline composer), a Gemini model name (gemini-...), an OpenAI model name "
        "(gpt-..., o3-..., or openai:<name>), or 'local' / 'local:<served-model>' with base_url= "
        "for an OpenAI-compatible server"
    )


def create_backend(config: GeneratorConfig) -> Backend:
    kind = resolve_backend_kind(config.model_name)
    if kind == "builtin":
        from synth_modules.backends.builtin import BuiltinBackend

        return BuiltinBackend(config)
    if kind in {"openai", "local"}:
        from synth_modules.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(config)
    if kind == "gemini":
        from synth_modules.backends.gemini_backend import GeminiBackend

        return GeminiBackend(config)
    from synth_modules.config import ConfigError

    raise ConfigError(f"unknown model_name {config.model_name!r}; {describe_model_names()}")
