"""Popcorn-style command-line parsing: `.preset` picks a preset, `key=value` / `--key=value` override.

    python scripts/generate_synth_torch.py .parallel num_total_samples=1000 num_core_ops_range=[1,3]

Order does not matter; lists are written `[1,5]`; a bare `--flag` means `flag=true`.
"""

from __future__ import annotations

import ast
from typing import Any

from synth_modules.backends.model_names import check_model_name
from synth_modules.config import PRESETS, ConfigError, GeneratorConfig, build_config

USAGE = """usage: generate_synth_torch.py [.PRESET] [key=value ...]

presets: {presets}
keys:    {keys}

examples:
  python scripts/generate_synth_torch.py .single_debug
  python scripts/generate_synth_torch.py .parallel num_total_samples=1000 num_worker=2
  python scripts/generate_synth_torch.py .parallel model_name=gemini-2.5-flash num_total_samples=100
"""


def usage() -> str:
    return USAGE.format(
        presets=", ".join("." + name for name in PRESETS), keys=", ".join(GeneratorConfig.field_names())
    )


def parse_value(text: str) -> Any:
    """`[1,5]` -> [1, 5], `3` -> 3, `0.5` -> 0.5, `true` -> True, `none` -> None, anything else -> str."""
    lowered = text.strip().lower()
    if lowered in {"none", "null"}:
        return None
    if lowered in {"true", "false"}:
        return lowered == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_generate_args(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    """Split argv into (preset, overrides) or raise ConfigError with one clear message."""
    preset: str | None = None
    overrides: dict[str, Any] = {}
    for arg in argv:
        if arg.startswith(".") and "=" not in arg:
            if preset is not None:
                raise ConfigError(f"two presets given (.{preset} and {arg}); pick one")
            preset = arg[1:]
            continue
        body = arg[2:] if arg.startswith("--") else arg
        if "=" in body:
            key, _, value_text = body.partition("=")
            value: Any = parse_value(value_text)
        elif arg.startswith("--"):
            key, value = body, True
        else:
            raise ConfigError(f"cannot parse argument {arg!r}: expected .preset, key=value or --key=value")
        key = key.strip().replace("-", "_")
        if not key:
            raise ConfigError(f"cannot parse argument {arg!r}: empty key")
        if key in overrides:
            raise ConfigError(f"{key} is given twice")
        overrides[key] = value
    return preset, overrides


def config_from_argv(argv: list[str]) -> GeneratorConfig:
    """The validated config of a popcorn command line, model name included (one error, before any work)."""
    preset, overrides = parse_generate_args(argv)
    config = build_config(preset, overrides)
    check_model_name(config)
    return config
