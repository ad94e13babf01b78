"""`kernel-search export-traces RUN_DIRS --out DIR`: loop trajectories as a multi-turn SFT / RL dataset.

Two configs, both Parquet with a dataset card, so `datasets.load_dataset(DIR, "conversations")` reads them:

- `conversations`: one row per (loop, task) trajectory. `messages` alternate the model's attempts (assistant)
  with the evaluator's verdict on each (user); `rewards` / `categories` label every assistant turn with its
  verified outcome: refinement traces with measured speed labels.
- `attempts`: one row per attempt: the `prompt` messages that led to it, the `completion`, its `reward`
  (speedup vs eager when accepted, -1 for a reward hack, 0 otherwise), category, hack kind and timings.

The wording of synthesized turns (for offline trajectories, which have no recorded prompt) is in
prompts/trace_turns.toml.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kernel_search.loops.runner import TRAJECTORY_DIR
from kernel_search.loops.trajectory import Attempt, Trajectory
from prompts import load_prompt

CONFIGS = ("conversations", "attempts")


def reward(attempt: Attempt) -> float:
    if attempt.accepted:
        return float(attempt.speedup_vs_eager or 0.0)
    return -1.0 if attempt.rejected_as_hack else 0.0


def find_trajectories(run_dirs: list[Path]) -> list[tuple[str, Trajectory]]:
    """(run directory name, trajectory) for every trajectory file under each run directory."""
    found = []
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise ValueError(f"{run_dir}: no such run directory")
        files = sorted((run_dir / TRAJECTORY_DIR).glob("*/*.json")) + sorted(
            (run_dir / TRAJECTORY_DIR).glob("*.json")
        )
        if not files:
            raise ValueError(
                f"{run_dir}: no {TRAJECTORY_DIR}/ (is it a kernel-search loops or run directory?)"
            )
        found += [(run_dir.resolve().name, Trajectory.load(path)) for path in files]
    return found


def _first_turns(trajectory: Trajectory, device: str) -> list[dict[str, str]]:
    first = trajectory.attempts[0] if trajectory.attempts else None
    if first is not None and first.messages:
        return [m for m in first.messages if m["role"] != "assistant"]
    template = load_prompt("trace_turns")
    rendered = template.render(
        task_source=trajectory.task_source.strip(),
        contract=load_prompt("kernel_generate").fragment("contract"),
        device=device,
    )
    return [{"role": "system", "content": rendered.system}, {"role": "user", "content": rendered.user}]


def _answer(attempt: Attempt) -> str:
    if attempt.messages and attempt.messages[-1]["role"] == "assistant":
        return attempt.messages[-1]["content"]
    return load_prompt("trace_turns").fragment("answer", code=attempt.code.strip())


def conversation_row(trajectory: Trajectory, source: str, device: str) -> dict[str, Any]:
    template = load_prompt("trace_turns")
    messages = _first_turns(trajectory, device)
    turns = [a for a in trajectory.attempts if a.code]
    for number, attempt in enumerate(turns):
        if number:
            messages.append(
                {
                    "role": "user",
                    "content": template.fragment("feedback", feedback=turns[number - 1].feedback),
                }
            )
        messages.append({"role": "assistant", "content": _answer(attempt)})
    best = trajectory.best
    return {
        "id": f"{source}:{trajectory.loop}:{trajectory.task}",
        "task": trajectory.task,
        "loop": trajectory.loop,
        "proposer": trajectory.proposer,
        "task_source": trajectory.task_source,
        "messages": messages,
        "rewards": [reward(a) for a in turns],
        "categories": [a.category for a in turns],
        "hacks": [a.hack or "" for a in turns],
        "num_turns": len(turns),
        "solved": best is not None,
        "best_code": best.code if best else "",
        "best_speedup_vs_eager": best.speedup_vs_eager if best else None,
        "best_speedup_vs_compile": best.speedup_vs_compile if best else None,
        "cost_usd": trajectory.cost_usd,
        "run": source,
    }


def attempt_rows(trajectory: Trajectory, source: str, device: str) -> list[dict[str, Any]]:
    rows = []
    for attempt in trajectory.attempts:
        if not attempt.code:
            continue
        prompt = [m for m in attempt.messages if m["role"] != "assistant"] or _first_turns(trajectory, device)
        rows.append(
            {
                "id": f"{source}:{trajectory.loop}:{trajectory.task}:{attempt.index}",
                "task": trajectory.task,
                "loop": trajectory.loop,
                "proposer": trajectory.proposer,
                "attempt": attempt.index,
                "parent": attempt.parent if attempt.parent is not None else -1,
                "origin": attempt.origin,
                "prompt": prompt,
                "completion": _answer(attempt),
                "code": attempt.code,
                "reward": reward(attempt),
                "accepted": attempt.accepted,
                "category": attempt.category,
                "hack": attempt.hack or "",
                "message": attempt.message[:4000],
                "runtime_us": attempt.runtime_us,
                "speedup_vs_eager": attempt.speedup_vs_eager,
                "speedup_vs_compile": attempt.speedup_vs_compile,
                "prompt_tokens": attempt.prompt_tokens,
                "completion_tokens": attempt.completion_tokens,
                "cost_usd": attempt.cost_usd,
            }
        )
    return rows


def export_traces(run_dirs: list[Path], out: Path, device: str = "cuda") -> dict[str, int]:
    """Write both configs under `out` (Parquet + README.md dataset card); returns the row counts."""
    import datasets

    found = find_trajectories(run_dirs)
    conversations = [conversation_row(t, source, device) for source, t in found]
    attempts = [row for source, t in found for row in attempt_rows(t, source, device)]
    counts = {}
    for name, rows in (("conversations", conversations), ("attempts", attempts)):
        if not rows:
            raise ValueError(f"the run directories hold no {name} to export")
        (out / name).mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows).to_parquet(str(out / name / "train-00000-of-00001.parquet"))
        counts[name] = len(rows)
    _write_card(out, counts, [str(p) for p in run_dirs])
    return counts


def _write_card(out: Path, counts: dict[str, int], sources: list[str]) -> None:
    configs = "\n".join(
        f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {name}/train-*"
        for name in CONFIGS
    )
    body = "\n".join(f"- `{name}`: {count} rows" for name, count in counts.items())
    text = f"---\nconfigs:\n{configs}\ntags:\n- kernels\n- triton\n---\n\n# Kernel-search trajectories\n\n"
    text += f"{body}\n\nFrom: {', '.join(sources)}. Columns: see kernel_search/loops/traces.py.\n"
    (out / "README.md").write_text(text, encoding="utf-8")


def add_subcommand(sub: Any) -> None:
    parser = sub.add_parser("export-traces", help="loop trajectories as a multi-turn SFT / RL dataset")
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--device", default="cuda", help="the device named in synthesized prompts")
    parser.set_defaults(func=cmd_export_traces)


def cmd_export_traces(args: argparse.Namespace) -> int:
    counts = export_traces(args.run_dirs, args.out, args.device)
    print(json.dumps({"out": str(args.out), **counts}))
    return 0
