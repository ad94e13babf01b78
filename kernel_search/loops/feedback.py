"""What the next proposal is told about an attempt: its verdict, the evaluator's message and its speed, in words.

One place for this text so every loop and proposer (and the exported traces) describe attempts the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel_search.loops.trajectory import Attempt

_MAX_MESSAGE = 1500


def _speed(value: float | None) -> str:
    return f"{value:.3f}x" if value is not None else "n/a"


def describe_measurement(attempt: Attempt) -> str:
    """One line: verdict and, when measured, runtime and speedups."""
    if attempt.accepted:
        iqr = f" (IQR {attempt.iqr_us:.1f} us)" if attempt.iqr_us is not None else ""
        runtime = f"{attempt.runtime_us:.1f} us{iqr}" if attempt.runtime_us is not None else "n/a"
        return (
            f"correct, {runtime}, speedup {_speed(attempt.speedup_vs_eager)} vs eager, "
            f"{_speed(attempt.speedup_vs_compile)} vs torch.compile"
        )
    if attempt.correct and attempt.stage == "correctness":
        return "correct on the cheap check; not timed (did not survive the cascade)"
    kind = f" ({attempt.hack})" if attempt.hack else ""
    return f"rejected: {attempt.category}{kind}"


def feedback_for(attempt: Attempt) -> str:
    """The evaluator's verdict as the model (or a person reading the trace) sees it."""
    lines = [describe_measurement(attempt)]
    message = attempt.message.strip()
    if message:
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE // 3] + "\n[...]\n" + message[-2 * _MAX_MESSAGE // 3 :]
        lines.append(message)
    return "\n".join(lines)


def history_lines(history: Sequence[Attempt], limit: int = 8) -> list[str]:
    return [
        f"- attempt {a.index} ({a.origin}): {describe_measurement(a)}"
        + (f" -- {a.description}" if a.description else "")
        for a in list(history)[-limit:]
    ]
