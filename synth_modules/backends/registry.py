"""Map a `model_name` to the backend that serves it; imports SDKs only when that backend is chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth_modules.backends.model_names import check_model_name, describe_model_names, resolve_backend_kind

if TYPE_CHECKING:
    from synth_modules.backends.base import Backend
    from synth_modules.config import GeneratorConfig

__all__ = ["check_model_name", "create_backend", "describe_model_names", "resolve_backend_kind"]


def create_backend(config: GeneratorConfig) -> Backend:
    check_model_name(config)
    kind = resolve_backend_kind(config.model_name)
    if kind == "builtin":
        from synth_modules.backends.builtin import BuiltinBackend

        return BuiltinBackend(config)
    if kind in {"openai", "local", "xai"}:
        from synth_modules.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(config)
    if kind == "gemini":
        from synth_modules.backends.gemini_backend import GeminiBackend

        return GeminiBackend(config)
    if kind == "anthropic":
        from synth_modules.backends.anthropic_backend import AnthropicBackend

        return AnthropicBackend(config)
    raise AssertionError(f"unhandled backend kind {kind!r}")  # check_model_name admits only the kinds above
