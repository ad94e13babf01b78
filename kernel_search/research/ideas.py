"""Ideas for the research pipeline and their novelty check.

Offline, ideas come from idea_catalog.toml (searches over Inductor's launch configurations) and novelty is the
distance of an idea's words from the discovered papers' titles and snippets (1 - the highest Jaccard overlap:
no papers, no overlap). With a model, the model proposes the ideas (each naming one of the config search's
strategies; others are dropped) and rates each one's novelty against the papers.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from kernel_search.loops.llm_calls import LLMCaller
from kernel_search.strategies import STRATEGIES
from prompts import load_prompt
from synth_modules.backends.parsing import find_code_blocks

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_WORD = re.compile(r"[a-z][a-z0-9]+")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "into",
        "over",
        "each",
        "one",
        "are",
        "its",
        "their",
        "than",
        "more",
        "less",
    ]
)


@dataclass
class Idea:
    title: str
    description: str
    strategy: str
    source: str = "catalog"  # catalog | model
    novelty: float | None = None
    novelty_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def catalog(operation: str) -> list[Idea]:
    text = resources.files("kernel_search.research").joinpath("idea_catalog.toml").read_text(encoding="utf-8")
    entries = tomllib.loads(text)["idea"]
    return [
        Idea(e["title"], e["description"], e["strategy"])
        for e in entries
        if "*" in e["operations"] or operation in e["operations"]
    ]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def lexical_novelty(idea: Idea, papers: list[dict[str, Any]]) -> tuple[float, str]:
    words = _words(f"{idea.title} {idea.description}")
    best, closest = 0.0, ""
    for paper in papers:
        other = _words(f"{paper.get('title', '')} {paper.get('snippet', '')}")
        overlap = len(words & other) / len(words | other) if words | other else 0.0
        if overlap > best:
            best, closest = overlap, str(paper.get("title", ""))
    note = f"closest paper: {closest} (word overlap {best:.2f})" if closest else "no papers to compare with"
    return round(1.0 - best, 3), note


def _json_value(text: str) -> Any:
    for block in reversed([b.code for b in find_code_blocks(text)] + [text]):
        try:
            return json.loads(block)
        except ValueError:
            continue
    return None


def _papers_text(papers: list[dict[str, Any]]) -> str:
    return "\n".join(f"- {p.get('title')}: {str(p.get('snippet', ''))[:200]}" for p in papers[:8]) or "(none)"


def model_ideas(
    caller: LLMCaller, domain: str, operation: str, papers: list[dict[str, Any]], count: int
) -> list[Idea]:
    prompt = load_prompt("research_ideas").render(
        domain=domain, operation=operation, count=str(count), strategies=", ".join(sorted(STRATEGIES)),
        papers=_papers_text(papers),
    )  # fmt: skip
    text, _ = caller.ask("research/ideas", prompt)
    value = _json_value(text)
    ideas = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and item.get("strategy") in STRATEGIES and item.get("title"):
            ideas.append(
                Idea(str(item["title"]), str(item.get("description", "")), str(item["strategy"]), "model")
            )
    return ideas[:count]


def model_novelty(caller: LLMCaller, idea: Idea, papers: list[dict[str, Any]]) -> tuple[float, str] | None:
    prompt = load_prompt("research_novelty").render(
        title=idea.title, description=idea.description, papers=_papers_text(papers)
    )
    text, _ = caller.ask("research/novelty", prompt)
    value = _json_value(text)
    if isinstance(value, dict) and isinstance(value.get("novelty"), (int, float)):
        return max(0.0, min(1.0, float(value["novelty"]))), str(value.get("reason", ""))
    return None


def generate_ideas(
    domain: str, operation: str, papers: list[dict[str, Any]], count: int, caller: LLMCaller | None = None
) -> list[Idea]:
    """Up to `count` ideas, each with a novelty score; the model's when it answers, else the catalog's."""
    ideas = model_ideas(caller, domain, operation, papers, count) if caller is not None else []
    ideas = ideas or catalog(operation)[:count]
    for idea in ideas:
        rated = model_novelty(caller, idea, papers) if caller is not None else None
        idea.novelty, idea.novelty_note = rated or lexical_novelty(idea, papers)
    return ideas


def select(ideas: list[Idea]) -> Idea:
    """The most novel idea (the first of equals)."""
    if not ideas:
        raise ValueError("no ideas to choose from")
    return max(ideas, key=lambda idea: (idea.novelty or 0.0, -ideas.index(idea)))
