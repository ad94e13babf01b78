"""kernel_search: score candidate kernels against KernelBench-format tasks, and search over them.

The evaluator (`kernel_search.evaluator`) is the part every search uses: each candidate runs in its own
sandboxed process, is checked for correctness on fresh inputs and randomized weights, timed against the eager,
torch.compile and max-autotune baselines, and screened for reward hacks. The tuner (`kernel_search.tuning.tuner`)
searches config spaces with one API whatever the strategy.
"""

from kernel_search.evaluator import EvalOptions, EvalResult, Evaluator
from kernel_search.tasks import Task, TaskError, load_task, load_tasks
from kernel_search.tuning.tuner import Outcome, Trial, Tuner

__all__ = [
    "EvalOptions",
    "EvalResult",
    "Evaluator",
    "Outcome",
    "Task",
    "TaskError",
    "Trial",
    "Tuner",
    "load_task",
    "load_tasks",
]
