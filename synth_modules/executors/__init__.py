"""Where validation runs: the local warm-worker pool (default) or a Ray cluster.

Both expose the same two calls, so the pipeline and the run-directory contracts do not change with the executor.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from synth_modules.sandbox.api import SandboxOptions, ValidationJob
from synth_modules.types import Verdict

if TYPE_CHECKING:
    from synth_modules.config import GeneratorConfig


class ValidationExecutor(Protocol):
    def submit(self, job: ValidationJob) -> Future[Verdict]: ...

    def close(self) -> None: ...


def sandbox_options(config: GeneratorConfig) -> SandboxOptions:
    return SandboxOptions(
        timeout_s=config.timeout_s,
        memory_limit_mb=config.memory_limit_mb,
        cpu_vectorize=config.cpu_vectorize,
        allow_unsandboxed=config.allow_unsandboxed,
        allow_graph_breaks=config.allow_graph_breaks,
    )


def create_executor(config: GeneratorConfig) -> ValidationExecutor:
    options = sandbox_options(config)
    if config.executor == "ray":
        from synth_modules.executors.ray_executor import RayExecutor

        return RayExecutor(config.num_worker, options, address=config.ray_address)
    from synth_modules.sandbox import SandboxPool

    return SandboxPool(config.num_worker, options)
