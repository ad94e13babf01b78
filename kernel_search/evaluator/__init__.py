"""The kernel evaluator: isolated, hack-resistant correctness and timing of KernelBench-style candidates."""

from kernel_search.evaluator.api import EvalOptions, Evaluator
from kernel_search.evaluator.result import CATEGORIES, EvalResult
from kernel_search.evaluator.timing import TimingSettings
from kernel_search.tasks import Task, TaskError, load_task, load_tasks

__all__ = [
    "CATEGORIES",
    "EvalOptions",
    "EvalResult",
    "Evaluator",
    "Task",
    "TaskError",
    "TimingSettings",
    "load_task",
    "load_tasks",
]
