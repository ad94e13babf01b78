"""kernel_search: score candidate kernels against KernelBench-format tasks, and search over them.

The evaluator (`kernel_search.evaluator`) is the part every search uses: each candidate runs in its own
sandboxed process, is checked for correctness on fresh inputs and randomized weights, timed against the eager,
torch.compile and max-autotune baselines, and screened for reward hacks.
"""

from kernel_search.evaluator import EvalOptions, EvalResult, Evaluator
from kernel_search.tasks import Task, TaskError, load_task, load_tasks

__all__ = ["EvalOptions", "EvalResult", "Evaluator", "Task", "TaskError", "load_task", "load_tasks"]
