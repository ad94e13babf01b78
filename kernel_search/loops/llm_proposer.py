"""The LLM proposer: every proposal is one call to the project's LLM backends (Gemini, OpenAI, Anthropic, xAI,
local servers), so retries, the response cache, pacing and cost accounting are the backends' own.

Prompts live in prompts/kernel_*.toml. Each call is tagged `<task>/<kind>/<n>`: a rerun of the same loop is
served from the response cache, while two calls with the same prompt in one run still get their own draws.
Tokens and cost of each call are measured by `LLMCaller` (kernel_search/loops/llm_calls.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from kernel_search.loops.feedback import describe_measurement, history_lines
from kernel_search.loops.llm_calls import LLMCaller
from kernel_search.loops.proposal import Idea, Proposal, Proposer
from kernel_search.loops.trajectory import Attempt
from kernel_search.tasks import Task
from prompts import RenderedPrompt, load_prompt
from synth_modules.backends.parsing import find_code_blocks

_CANDIDATE = re.compile(r"^\s*(class\s+ModelNew\b|ModelNew\s*=)", re.MULTILINE)
_MAX_INSPIRATIONS = 3


def extract_candidate(text: str) -> str:
    """The last fenced block that defines ModelNew (else the last python block; "" when there is none)."""
    blocks = [b for b in find_code_blocks(text) if b.code.strip()]
    with_model = [b for b in blocks if _CANDIDATE.search(b.code)]
    chosen = (with_model or [b for b in blocks if b.lang in {"", "python", "py", "python3"}] or [None])[-1]
    return chosen.code.strip("\n") + "\n" if chosen is not None else ""


def parse_ideas(text: str) -> list[str]:
    """A JSON array of strings from the answer's json block (or the whole answer); [] when unreadable."""
    blocks = [b.code for b in find_code_blocks(text) if b.lang in {"json", ""}] or [text]
    for block in reversed(blocks):
        try:
            value = json.loads(block)
        except ValueError:
            continue
        if isinstance(value, list):
            return [str(item).strip() for item in value if str(item).strip()]
    return []


class LLMProposer(Proposer):
    def __init__(self, backend: Any, *, device: str = "cuda", target_speedup: float = 1.0):
        self.backend = backend
        self.name = f"{backend.name}:{backend.model}"
        self.device = device
        self.target_speedup = target_speedup
        self.caller = LLMCaller(backend)

    def _ask(self, task: Task, kind: str, prompt: RenderedPrompt) -> tuple[str, dict[str, Any]]:
        return self.caller.ask(f"{task.name}/{kind}", prompt)

    def _code_proposal(
        self, task: Task, kind: str, prompt: RenderedPrompt, origin: str, text: str
    ) -> Proposal:
        answer, accounting = self._ask(task, kind, prompt)
        code = extract_candidate(answer) if not accounting["error"] else ""
        if not code and not accounting["error"]:
            accounting["error"] = "extraction_failure: the answer holds no python code block"
        return Proposal(code=code, origin=origin, description=text, **accounting)

    def _contract(self) -> str:
        return load_prompt("kernel_generate").fragment("contract")

    # ----- Proposer ----------------------------------------------------------------------------------------
    def start(self, task: Task, count: int = 1) -> list[Proposal]:
        prompt = load_prompt("kernel_generate").render(
            task_source=task.source.strip(), contract=self._contract(), device=self.device
        )
        return [self._code_proposal(task, "generate", prompt, "llm", "first attempt") for _ in range(count)]

    def refine(self, task: Task, parent: Attempt, history: Sequence[Attempt]) -> Proposal:
        template = load_prompt("kernel_refine")
        prompt = template.render(
            task_source=task.source.strip(),
            previous_code=parent.code.strip() or "(no code)",
            category=parent.category,
            category_hint=template.hint(parent.category),
            feedback=parent.feedback or parent.message or "(none)",
            history="\n".join(history_lines(history)) or template.fragment("none"),
            target=f"{self.target_speedup:g}",
            contract=self._contract(),
        )
        origin = "llm-refine" if parent.accepted else "llm-repair"
        return self._code_proposal(task, "refine", prompt, origin, f"refine attempt {parent.index}")

    def ideas(self, task: Task, parent: Attempt, count: int, history: Sequence[Attempt]) -> list[Idea]:
        template = load_prompt("kernel_ideas")
        tried = [a.description for a in history if a.parent == parent.index and a.description]
        prompt = template.render(
            task_source=task.source.strip(),
            code=parent.code.strip(),
            measurement=parent.feedback or describe_measurement(parent),
            count=str(count),
            tried="\n".join(f"- {t}" for t in tried) or template.fragment("none"),
        )
        answer, accounting = self._ask(task, "ideas", prompt)
        texts = parse_ideas(answer)[:count]
        ideas = [Idea(text) for text in texts]
        if ideas:  # the call's cost and messages ride on the first idea (one call produced them all)
            first = ideas[0]
            first.messages = accounting["messages"]
            first.prompt_tokens, first.completion_tokens = (
                accounting["prompt_tokens"],
                accounting["completion_tokens"],
            )
            first.cost_usd = accounting["cost_usd"]
        return ideas

    def implement(self, task: Task, parent: Attempt, idea: Idea) -> Proposal:
        prompt = load_prompt("kernel_implement").render(
            task_source=task.source.strip(),
            code=parent.code.strip(),
            idea=idea.text,
            contract=self._contract(),
        )
        proposal = self._code_proposal(task, "implement", prompt, "llm-idea", idea.text)
        proposal.messages = idea.messages + proposal.messages
        proposal.prompt_tokens += idea.prompt_tokens
        proposal.completion_tokens += idea.completion_tokens
        proposal.cost_usd += idea.cost_usd
        return proposal

    def mutate(self, task: Task, parent: Attempt, inspirations: Sequence[Attempt], rng: Any) -> Proposal:
        template = load_prompt("kernel_evolve")
        shown = [a for a in inspirations if a.index != parent.index][:_MAX_INSPIRATIONS]
        rendered = [
            template.fragment("inspiration", measurement=describe_measurement(a), code=a.code.strip())
            for a in shown
        ]
        prompt = template.render(
            task_source=task.source.strip(),
            parent_code=parent.code.strip(),
            parent_measurement=describe_measurement(parent),
            parent_feedback=parent.feedback or describe_measurement(parent),
            inspirations="\n\n".join(rendered) or template.fragment("none"),
            contract=self._contract(),
        )
        return self._code_proposal(task, "evolve", prompt, "llm-mutation", f"child of attempt {parent.index}")

    def close(self) -> None:
        self.caller.close()


def build_llm_proposer(
    model_name: str,
    *,
    cache_dir: str,
    base_url: str | None = None,
    api_style: str = "chat",
    temperature: float = 0.7,
    max_tokens: int = 8192,
    max_concurrency: int = 4,
    device: str = "cuda",
    target_speedup: float = 1.0,
) -> LLMProposer:
    """An LLMProposer over the project's backend for `model_name` (ConfigError for a bad name or missing key)."""
    from synth_modules.backends.llm_base import LLMBackend
    from synth_modules.backends.registry import create_backend
    from synth_modules.config import ConfigError, GeneratorConfig

    config = GeneratorConfig(
        model_name=model_name,
        base_url=base_url,
        api_style=api_style,
        temperature=temperature,
        max_tokens=max_tokens,
        max_concurrency=max_concurrency,
        cache_dir=cache_dir,
        output_dir=cache_dir,
    )
    backend = create_backend(config)
    if not isinstance(backend, LLMBackend):
        raise ConfigError(f"model {model_name!r} is not an LLM; leave --model out for the offline proposer")
    return LLMProposer(backend, device=device, target_speedup=target_speedup)
