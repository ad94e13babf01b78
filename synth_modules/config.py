"""Generator configuration: defaults, presets, and validation that fails fast with one clear message."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT_DIR = "generated_programs"
DTYPE_SETTINGS = ("float32", "bfloat16", "float16", "mixed")

# Keys that change what a run produces; resuming a run whose values differ is refused unless forced.
# Operational knobs (workers, verbosity, concurrency, force) may change between resumes.
OPERATIONAL_KEYS = frozenset(
    {
        "num_worker",
        "verbose",
        "force",
        "max_concurrency",
        "requests_per_minute",
        "request_timeout_s",
        "executor",
        "ray_address",
        "progress",
        "debug_dir",
        "num_total_samples",
        "cache_dir",
        "output_dir",
    }
)


class ConfigError(ValueError):
    """An invalid configuration; its message is shown to the user as-is."""


@dataclass
class GeneratorConfig:
    # --- popcorn keys (contract) ---
    num_total_samples: int = 100
    num_worker: int = max(1, os.cpu_count() or 1)
    model_name: str = "builtin"
    num_core_ops_range: list[int] = field(default_factory=lambda: [1, 2])
    num_compound_ops_range: list[int] = field(default_factory=lambda: [0, 1])
    num_supporting_ops_range: list[int] = field(default_factory=lambda: [1, 5])
    p_value: float = 0.5
    temperature: float = 0.8
    max_tokens: int = 4096
    output_dir: str = DEFAULT_OUTPUT_DIR
    seed: int = 0
    # --- sampling ---
    sampling: str = "uniform"  # uniform | coverage
    dtype: str = "float32"  # float32 | bfloat16 | float16 | mixed (each program draws one of the three)
    # --- LLM backends ---
    base_url: str | None = None
    api_style: str = "chat"  # chat | completions (local servers)
    max_retries: int = 2  # repair attempts after a failed validation
    max_concurrency: int = 8
    requests_per_minute: float = 0.0  # 0 = unlimited
    request_timeout_s: float = 120.0
    cache_dir: str | None = None  # default: <output_dir>/.cache
    # --- sandbox ---
    timeout_s: float = 60.0
    memory_limit_mb: int = 4096
    cpu_vectorize: bool = False  # validate with Inductor's SIMD CPU kernels (slower; see SandboxOptions)
    allow_unsandboxed: bool = False  # run programs even where Landlock is missing (UNSAFE; prints a warning)
    allow_graph_breaks: bool = False  # accept a forward Dynamo split into several graphs (else graph_break)
    # --- gates ---
    contamination: str = "l1,l2"  # off | l1 | l2 | l1,l2
    contamination_strictness: str = "reordered"  # exact | reordered
    dedup: bool = True
    dedup_threshold: float = 0.9
    # --- run control ---
    force: bool = False
    verbose: bool = False
    progress: bool = True
    debug_dir: str | None = None  # single_debug writes prompt/response/program here
    executor: str = "local"  # local | ray
    ray_address: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir).expanduser().resolve()


PRESETS: dict[str, dict[str, Any]] = {
    "single_debug": {"num_total_samples": 1, "num_worker": 1, "verbose": True, "debug_dir": "debug"},
    "parallel": {"num_total_samples": 1000},
    "default": {},
}


def _coerce(name: str, value: Any, template: Any, annotation: str) -> Any:
    """Convert a parsed override to the field's type, or raise ConfigError naming the key."""
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigError(f"{name} must not be empty")
    try:
        if annotation.startswith("list"):
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return [int(v) for v in value]
        if annotation == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise TypeError
        if annotation == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if annotation == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        kind = {"list[int]": "a list of two integers like [1,3]"}.get(annotation, annotation)
        raise ConfigError(f"{name}={value!r} is not valid: expected {kind}") from None


def build_config(preset: str | None, overrides: dict[str, Any]) -> GeneratorConfig:
    """Apply a preset and overrides to the defaults, then validate the result."""
    preset = preset or "default"
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset .{preset}; choose one of: {', '.join('.' + p for p in PRESETS)}")
    fields = {f.name: f for f in dataclasses.fields(GeneratorConfig)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hints.append(f"{key}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise ConfigError(f"unknown config key(s): {', '.join(hints)}")
    values: dict[str, Any] = dict(PRESETS[preset])
    for key, raw in overrides.items():
        annotation = str(fields[key].type).replace(" ", "")
        values[key] = _coerce(key, raw, None, annotation)
    config = GeneratorConfig(**values)
    validate_config(config)
    return config


def _check_range(name: str, bounds: list[int], low: int = 0) -> None:
    if len(bounds) != 2:
        raise ConfigError(f"{name} must be [min,max], got {bounds}")
    lo, hi = bounds
    if lo < low:
        raise ConfigError(f"{name} minimum must be >= {low}, got {lo}")
    if lo > hi:
        raise ConfigError(f"{name}: min {lo} > max {hi}")


def validate_config(config: GeneratorConfig) -> None:
    """Reject invalid values before any work starts (one clear message).

    Model names are the backends' business: `synth_modules.backends.registry.check_model_name` checks them
    where the config is used (the CLI and the pipeline), so this module depends on no backend.
    """
    if config.num_total_samples < 1:
        raise ConfigError(f"num_total_samples must be >= 1, got {config.num_total_samples}")
    if config.num_worker < 1:
        raise ConfigError(f"num_worker must be >= 1, got {config.num_worker}")
    _check_range("num_core_ops_range", config.num_core_ops_range, low=1)
    _check_range("num_compound_ops_range", config.num_compound_ops_range)
    _check_range("num_supporting_ops_range", config.num_supporting_ops_range)
    if not 0.0 < config.p_value <= 1.0:
        raise ConfigError(f"p_value must be in (0, 1], got {config.p_value}")
    if not 0.0 <= config.temperature <= 2.0:
        raise ConfigError(f"temperature must be in [0, 2], got {config.temperature}")
    if config.max_tokens < 256:
        raise ConfigError(f"max_tokens must be >= 256, got {config.max_tokens}")
    if config.max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {config.max_retries}")
    if config.max_concurrency < 1:
        raise ConfigError(f"max_concurrency must be >= 1, got {config.max_concurrency}")
    if config.requests_per_minute < 0:
        raise ConfigError(f"requests_per_minute must be >= 0, got {config.requests_per_minute}")
    if config.timeout_s <= 0:
        raise ConfigError(f"timeout_s must be > 0, got {config.timeout_s}")
    if config.memory_limit_mb < 256:
        raise ConfigError(f"memory_limit_mb must be >= 256, got {config.memory_limit_mb}")
    if config.sampling not in {"uniform", "coverage"}:
        raise ConfigError(f"sampling must be 'uniform' or 'coverage', got {config.sampling!r}")
    if config.dtype not in DTYPE_SETTINGS:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPE_SETTINGS)}; got {config.dtype!r}")
    if config.api_style not in {"chat", "completions"}:
        raise ConfigError(f"api_style must be 'chat' or 'completions', got {config.api_style!r}")
    if config.executor not in {"local", "ray"}:
        raise ConfigError(f"executor must be 'local' or 'ray', got {config.executor!r}")
    levels = {part.strip() for part in config.contamination.split(",") if part.strip()}
    if not levels or not levels <= {"off", "l1", "l2"} or ("off" in levels and len(levels) > 1):
        raise ConfigError(f"contamination must be 'off' or a list of l1,l2; got {config.contamination!r}")
    if config.contamination_strictness not in {"exact", "reordered"}:
        raise ConfigError(
            f"contamination_strictness must be 'exact' or 'reordered', got {config.contamination_strictness!r}"
        )
    if not 0.0 < config.dedup_threshold <= 1.0:
        raise ConfigError(f"dedup_threshold must be in (0, 1], got {config.dedup_threshold}")
    _check_writable(config.output_path)


def _check_writable(path: Path) -> None:
    probe_root = path
    while not probe_root.exists():
        if probe_root.parent == probe_root:
            break
        probe_root = probe_root.parent
    if probe_root.exists() and not probe_root.is_dir():
        raise ConfigError(f"output_dir {path} is not a directory ({probe_root} is a file)")
    if not os.access(probe_root, os.W_OK | os.X_OK):
        raise ConfigError(f"output_dir {path} is not writable")
