"""kernel_search: evaluate and tune kernel candidates for KernelBench-format tasks (DESIGN.md "Kernel search")."""

from kernel_search.tuner import Outcome, Trial, Tuner

__all__ = ["Outcome", "Trial", "Tuner"]
