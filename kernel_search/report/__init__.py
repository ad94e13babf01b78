"""Reports over many evaluation results (summary.md, fast_p, geomean speedups)."""

from kernel_search.report.summary import FAST_P_THRESHOLDS, render_summary, summarize

__all__ = ["FAST_P_THRESHOLDS", "render_summary", "summarize"]
