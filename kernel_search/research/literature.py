"""Literature discovery through Exa's search API (the `exa-py` SDK, EXA_API_KEY).

Without a key (or without exa-py) discovery is skipped with a clear reason, recorded in
literature/literature_summary.json, and the pipeline goes on: nothing downstream needs papers. EXA_BASE_URL
points the client at a gateway (or the tests' loopback server).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_BASE_URL = "https://api.exa.ai"
_MAX_TEXT = 600


@dataclass
class Paper:
    title: str
    url: str
    published: str = ""
    snippet: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def query_for(domain: str, operation: str) -> str:
    topic = {"seeds": "fused operator", "gemm": "GEMM matrix multiplication"}.get(operation, operation)
    return f"{domain} GPU kernel optimization {topic} Triton autotuning"


def skip_reason() -> str | None:
    """Why discovery cannot run here, or None when it can."""
    if not os.environ.get("EXA_API_KEY", "").strip():
        return "EXA_API_KEY is not set: literature discovery skipped (set it to search with Exa)"
    try:
        import exa_py  # noqa: F401
    except ImportError:
        return "exa-py is not installed: literature discovery skipped (pip install 'synth-torch[research]')"
    return None


def search(query: str, num_results: int = 8) -> list[Paper]:
    """Exa search results as papers (raises the SDK's error on an HTTP failure)."""
    from exa_py import Exa

    client = Exa(
        api_key=os.environ["EXA_API_KEY"].strip(), base_url=os.environ.get("EXA_BASE_URL") or DEFAULT_BASE_URL
    )
    response = client.search(query, num_results=num_results, contents={"highlights": True})
    papers = []
    for result in response.results:
        highlights = getattr(result, "highlights", None) or []
        text = " ".join(highlights) or (getattr(result, "text", None) or "")
        papers.append(
            Paper(
                title=str(result.title or result.url),
                url=str(result.url),
                published=str(getattr(result, "published_date", "") or ""),
                snippet=text[:_MAX_TEXT],
                score=getattr(result, "score", None),
            )
        )
    return papers


def discover(domain: str, operation: str, num_results: int = 8) -> dict[str, Any]:
    """literature_summary.json's content: the query, the papers, or why there are none."""
    query = query_for(domain, operation)
    reason = skip_reason()
    if reason is not None:
        return {"query": query, "skipped": True, "reason": reason, "papers": []}
    try:
        papers = search(query, num_results)
    except Exception as error:  # a provider failure is recorded, not fatal: ideas do not need papers
        return {"query": query, "skipped": True, "reason": f"Exa search failed: {error}"[:500], "papers": []}
    return {"query": query, "skipped": False, "reason": "", "papers": [p.to_dict() for p in papers]}
