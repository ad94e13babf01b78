"""Live progress (tqdm) and the end-of-run summary table."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from synth_modules.run.stats import StatsTracker


class Progress:
    """A tqdm bar showing accepted/rejected counts, yield and the top failure category."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self._bar = tqdm(
            total=total,
            initial=initial,
            desc="samples",
            unit="sample",
            disable=not enabled,
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def update(self, stats: StatsTracker) -> None:
        self._bar.set_postfix(
            ok=stats.accepted,
            rej=stats.rejected,
            yield_=f"{100 * stats.yield_rate():.1f}%",
            top=stats.top_failure(),
            refresh=False,
        )
        self._bar.update(1)

    def write(self, message: str) -> None:
        self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


def summary_table(stats: dict[str, Any], output_dir: str) -> str:
    """A plain-text table printed when a run ends."""
    rows = [
        ("output_dir", output_dir),
        ("samples (this run)", stats.get("samples", 0)),
        ("accepted", stats.get("accepted", 0)),
        ("rejected", stats.get("rejected", 0)),
        ("yield", f"{100 * stats.get('yield', 0):.1f}%"),
        ("first-try yield", f"{100 * stats.get('first_try_yield', 0):.1f}%"),
        ("wall time", f"{stats.get('elapsed_s', 0):.1f} s"),
        ("accepted / min", f"{stats.get('accepted_per_min', 0):.1f}"),
    ]
    usage = stats.get("usage") or {}
    if usage.get("prompt_tokens") or usage.get("completion_tokens"):
        rows.append(("LLM calls", usage["calls"]))
        rows.append(("tokens in/out", f"{usage.get('prompt_tokens', 0)}/{usage.get('completion_tokens', 0)}"))
        rows.append(("est. cost", f"${stats.get('cost_usd', 0):.4f}"))
    for category, count in list((stats.get("final_failures_by_category") or {}).items())[:6]:
        rows.append((f"  rejected: {category}", count))
    width = max(len(str(k)) for k, _ in rows)
    return "\n".join(f"{k!s:<{width}}  {v}" for k, v in rows)
