"""The one exception the export stages raise: it carries the failure category written to rejected.jsonl."""

from __future__ import annotations

from synth_modules.types import Category


class ExportError(Exception):
    """A program that cannot become a verified pair, with the reason's category.

    Categories used here: capture_failure (Inductor or our capture broke), graph_break (more than one graph),
    unsupported (a feature the pair format cannot express), mismatch (the Triton module disagrees).
    """

    def __init__(self, category: Category | str, message: str):
        super().__init__(message)
        self.category = Category(category)
        self.message = message
