"""GPU-sized tasks from small seed tasks: every input tensor repeated `factor` times along its first dimension.

Seed tasks are sized for CPU validation; on an H200 they finish in microseconds, where launch overhead hides
every kernel choice. Until a gpu size profile exists, a task is scaled by wrapping its `get_inputs()` (the
model and its weights are unchanged, so a task whose forward fixes the batch size fails its first evaluation
and is reported like any other failure).
"""

from __future__ import annotations

from pathlib import Path

_WRAPPER = """

# ---- kernel-search: inputs repeated {factor}x along the first dimension ----
_kernel_search_unscaled_get_inputs = get_inputs


def get_inputs():
    return [
        torch.cat([value] * {factor}, dim=0) if isinstance(value, torch.Tensor) and value.dim() > 0 else value
        for value in _kernel_search_unscaled_get_inputs()
    ]
"""


def scale_task_source(source: str, factor: int) -> str:
    if factor < 1:
        raise ValueError(f"batch scale must be >= 1, got {factor}")
    if factor == 1:
        return source
    if "import torch" not in source:
        raise ValueError("a task to scale must import torch")
    return source.rstrip() + "\n" + _WRAPPER.format(factor=factor)


def write_scaled(source: str, name: str, factor: int, folder: Path) -> Path:
    """The scaled task as `folder/<name>.py` (rewritten only when it changed, so resumes see the same file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('/', '__')}.py"
    text = scale_task_source(source, factor)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path
