"""Which backend serves a `model_name`, and the one clear error for a name none serves.

Kept apart from the registry (which imports the backends) so a backend can ask what kind it is serving.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from synth_modules.config import ConfigError

if TYPE_CHECKING:
    from synth_modules.config import GeneratorConfig

_OPENAI_PATTERN = re.compile(r"^(gpt-|o\d|chatgpt-|openai[:/])")
_GEMINI_PATTERN = re.compile(r"^(gemini|models/gemini|gemini[:/])")
_ANTHROPIC_PATTERN = re.compile(r"^(claude-|anthropic[:/])")
_XAI_PATTERN = re.compile(r"^(grok-|xai[:/])")


def resolve_backend_kind(model_name: str) -> str | None:
    """builtin | gemini | openai | anthropic | xai | local, or None for a name no backend serves."""
    name = model_name.strip().lower()
    if name == "builtin":
        return "builtin"
    if name == "local" or name.startswith("local:"):
        return "local"
    if _GEMINI_PATTERN.match(name):
        return "gemini"
    if _OPENAI_PATTERN.match(name):
        return "openai"
    if _ANTHROPIC_PATTERN.match(name):
        return "anthropic"
    if _XAI_PATTERN.match(name):
        return "xai"
    return None


def describe_model_names() -> str:
    return (
        "use 'builtin' (offline composer), a Gemini model name (gemini-...), an OpenAI model name "
        "(gpt-..., o3-..., or openai:<name>), an Anthropic model name (claude-... or anthropic:<name>), "
        "an xAI model name (grok-... or xai:<name>), or 'local' / 'local:<served-model>' with base_url= "
        "for an OpenAI-compatible server"
    )


def check_model_name(config: GeneratorConfig) -> None:
    """Refuse a model_name no backend serves (or `local` without a server) before any work starts."""
    kind = resolve_backend_kind(config.model_name)
    if kind is None:
        raise ConfigError(f"unknown model_name {config.model_name!r}; {describe_model_names()}")
    if kind == "local" and not config.base_url:
        raise ConfigError("model_name=local needs base_url=http://host:port/v1 (an OpenAI-compatible server)")
