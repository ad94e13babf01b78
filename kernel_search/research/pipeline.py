"""The research pipeline: literature -> ideas (novelty-checked) -> config search -> experiments -> summary.

    metadata.json                   the request, versions, GPU                (kernel_search.store.RunDirectory)
    literature/literature_summary.json   the query and papers found, or why discovery was skipped
    ideas/ideas.json, ideas/selected_idea.json   every idea with its novelty; the one tested
    search/search_history.json      every trial of the config search         (kernel_search.tuning.run_targets)
    results/best_result.json        the best config per task                 (the config search)
    results/experiments.json        Inductor's code vs the tuned code, measured again side by side
    results/summary.md              what was asked, found, tried and measured; the search's own tables below
    run.log, kernel_search.duckdb

The selected idea names a config-search strategy; the search runs over the `triton-launch` space of each
task's Inductor capture, every candidate scored by the evaluator.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kernel_search.evaluator import Evaluator
from kernel_search.loops.llm_calls import LLMCaller
from kernel_search.research import literature
from kernel_search.research.ideas import Idea, generate_ideas, select
from kernel_search.spaces.base import SpaceUnavailable
from kernel_search.spaces.triton_launch import TritonLaunchSpace
from kernel_search.store.rundir import write_json
from kernel_search.tasks import Task, load_task, load_tasks
from kernel_search.tuning.runs import Target, TuneRequest, run_targets
from kernel_search.tuning.search_space import ConfigSpace

log = logging.getLogger("kernel_search.research")
OPERATIONS = ("softmax", "gemm", "attention", "seeds")


@dataclass
class ResearchRequest:
    domain: str
    operation: str
    max_ideas: int = 3
    max_evals: int = 12  # evaluations of the config search, over all tasks
    model: str | None = None
    device: str = "cuda"
    tasks: str | None = None  # the seed tasks, for operation=seeds
    seed: int = 0
    num_papers: int = 8
    literature: bool = True  # False: skip discovery (the offline demo)

    def check(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(f"--operation must be one of {', '.join(OPERATIONS)}, got {self.operation!r}")
        if self.operation == "seeds" and not self.tasks:
            raise ValueError("--operation seeds needs --tasks (an export-seeds folder or task files)")
        if self.max_ideas < 1 or self.max_evals < 1:
            raise ValueError("--max-ideas and --max-evals must be >= 1")
        if not self.domain.strip():
            raise ValueError("--domain must not be empty")


def operation_tasks(request: ResearchRequest, out: Path) -> list[Task]:
    if request.operation == "seeds":
        assert request.tasks is not None
        return load_tasks(request.tasks)
    source = resources.files("kernel_search.research").joinpath(f"tasks/{request.operation}.py")
    path = out / "tasks" / f"1_{request.operation}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return [load_task(path)]


def _targets(tasks: list[Task], pairs: dict[str, Any], evaluator: Evaluator) -> list[Target]:
    def space_for(task: Task) -> TritonLaunchSpace:
        pair = pairs.get(task.name)
        if not isinstance(pair, dict):
            raise SpaceUnavailable(f"no Inductor capture: {pair or 'not captured'}")
        return TritonLaunchSpace(pair)

    return [
        Target(
            name=task.name,
            make_space=lambda task=task: space_for(task),
            make_evaluate=lambda task=task: (
                lambda source, name: evaluator.evaluate(task, source, name).to_dict()
            ),
        )
        for task in tasks
    ]


def experiments(
    tasks: list[Task], pairs: dict[str, Any], best: dict[str, Any], evaluator: Evaluator
) -> list[dict]:
    """Inductor's code and the tuned code for each task, measured again, one after the other."""
    rows = []
    for task in tasks:
        pair = pairs.get(task.name)
        run = (best.get("tasks") or {}).get(task.name)
        if not isinstance(pair, dict):
            rows.append({"task": task.name, "skipped": f"no Inductor capture: {pair}"})
            continue
        space = TritonLaunchSpace(pair)
        config_space = ConfigSpace(space.parameters(), space.is_valid)
        default = config_space.default_config() or {}
        tuned = (run or {}).get("best_config") or default
        measured = {}
        for label, config in (("inductor", default), ("tuned", tuned)):
            result = evaluator.evaluate(task, space.render(config), f"experiment-{label}")
            measured[label] = {k: result.to_dict()[k] for k in ("category", "correct", "runtime_us", "iqr_us",
                                                                "speedup_vs_eager", "speedup_vs_compile")}  # fmt: skip
        a, b = measured["inductor"].get("runtime_us"), measured["tuned"].get("runtime_us")
        ok = all(m["category"] == "ok" for m in measured.values())
        rows.append({"task": task.name, "config": tuned, **measured, "same_code": tuned == default,
                     "tuned_vs_inductor": (a / b) if ok and a and b else None})  # fmt: skip
    return rows


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))


def summary_markdown(
    request: ResearchRequest, lit: dict, ideas: list[Idea], chosen: Idea, rows: list[dict]
) -> str:
    lines = [f"# Research run: {request.domain} / {request.operation}", ""]
    found = (
        "skipped: " + lit["reason"] if lit["skipped"] else f"{len(lit['papers'])} papers for {lit['query']!r}"
    )
    lines += [
        f"Literature: {found}",
        "",
        "| idea | strategy | source | novelty | note |",
        "| --- | --- | --- | ---: | --- |",
    ]
    lines += [
        f"| {i.title} | {i.strategy} | {i.source} | {_fmt(i.novelty)} | {i.novelty_note} |" for i in ideas
    ]
    lines += ["", f"Selected: **{chosen.title}** ({chosen.strategy}): {chosen.description}", ""]
    lines += ["| task | Inductor us | tuned us | tuned vs Inductor | tuned vs eager | tuned vs compile |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['task']} | {row['skipped']} | | | | |")
            continue
        i, t = row["inductor"], row["tuned"]
        ratio = _fmt(row["tuned_vs_inductor"]) + (" (same code: noise)" if row["same_code"] else "")
        lines.append(f"| {row['task']} | {_fmt(i['runtime_us'])} | {_fmt(t['runtime_us'])} | {ratio} | "
                     f"{_fmt(t['speedup_vs_eager'])} | {_fmt(t['speedup_vs_compile'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run_research(
    request: ResearchRequest,
    out: Path | str,
    evaluator: Evaluator,
    pairs: dict[str, Any] | None = None,
    caller: LLMCaller | None = None,
) -> dict[str, Any]:
    """Run every stage into `out`; returns the experiments and the selected idea."""
    request.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        lit = literature.discover(request.domain, request.operation, request.num_papers) if request.literature else {
            "query": "", "skipped": True, "reason": "offline run: literature discovery not attempted", "papers": []}  # fmt: skip
        write_json(out / "literature" / "literature_summary.json", lit)
        log.info("literature: %s", lit["reason"] or f"{len(lit['papers'])} papers")
        ideas = generate_ideas(request.domain, request.operation, lit["papers"], request.max_ideas, caller)
        chosen = select(ideas)
        write_json(out / "ideas" / "ideas.json", [i.to_dict() for i in ideas])
        write_json(out / "ideas" / "selected_idea.json", chosen.to_dict())
        log.info("selected idea: %s (%s)", chosen.title, chosen.strategy)
        tasks = operation_tasks(request, out)
        if pairs is None and request.device == "cpu":
            pairs = {t.name: "Inductor writes Triton only for CUDA (pass --pairs on CPU)" for t in tasks}
        elif pairs is None:
            from kernel_search.loops.seed_pairs import capture_pairs

            pairs = capture_pairs(tasks, out / "pairs", request.device)
        per_task = max(1, request.max_evals // len(tasks))
        log.removeHandler(handler)  # the config search logs into run.log itself
        tune = TuneRequest(space="triton-launch", strategies=[chosen.strategy], max_evaluations=per_task,
                           seed=request.seed, extra={"research": asdict(request), "idea": chosen.to_dict()})  # fmt: skip
        best = run_targets(_targets(tasks, pairs, evaluator), tune, out)
        log.addHandler(handler)
        rows = experiments(tasks, pairs, best, evaluator)
        write_json(out / "results" / "experiments.json", rows)
        search_summary = (out / "results" / "summary.md").read_text(encoding="utf-8")
        text = summary_markdown(request, lit, ideas, chosen, rows) + "\n## Config search\n\n" + search_summary
        (out / "results" / "summary.md").write_text(text, encoding="utf-8")
        log.info("done: %s", [r.get("tuned_vs_inductor") for r in rows])
        return {"idea": chosen.to_dict(), "experiments": rows}
    finally:
        log.removeHandler(handler)
        handler.close()


def demo_pairs(out: Path, cpu: bool) -> tuple[list[Task], dict[str, Any]]:
    """The offline demo's task and pair: a GPU-captured Inductor pair shipped with the package (CPU runs it in
    Triton's interpreter)."""
    import json

    from kernel_search.loops.seed_pairs import pair_from_export_row, task_source_from_export_row

    row = json.loads(
        resources.files("kernel_search.research").joinpath("demo_pair.json").read_text(encoding="utf-8")
    )
    folder = out / "demo_tasks"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / f"1_{row['entry_point']}.py"
    path.write_text(task_source_from_export_row(row), encoding="utf-8")
    task = load_task(path)
    return [task], {task.name: pair_from_export_row(row, cpu=cpu)}
