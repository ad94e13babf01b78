"""Public types of the validation sandbox (implementation lives beside this file)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SandboxOptions:
    """Limits and checks applied to every program a sandbox validates."""

    timeout_s: float = 60.0
    memory_limit_mb: int = 4096
    compile: bool = True  # run torch.compile (Inductor) and compare against eager
    device: str = "cpu"
    degenerate_checks: bool = True
    compile_backend: str = "inductor"
    # The static checks' allow-list (static_policy): "program" (the program file contract) or "repository"
    # (github_index: einops, numpy, functools, ...).
    static_policy: str = "program"
    # Modules the warm-up imports beyond torch, so forked children find them loaded (github_index's packages).
    extra_allowed_imports: tuple[str, ...] = ()
    # Accept a forward that Dynamo split into several graphs (or ran without one). Off: rejected as
    # graph_break, since "compiles with Inductor" should mean the whole forward did.
    allow_graph_breaks: bool = False
    # Also compare the compiled float32 outputs against an eager float64 copy of the model and inputs
    # (github_index's reference, as paritybench intended); a model that cannot run in float64 is not rejected.
    fp64_reference: bool = False
    # Test-only: skip the static checks to prove the process sandbox holds on its own.
    static_checks: bool = True
    # Warm workers (torch imported and Inductor warmed once, one fork per program). False: a fresh interpreter
    # per program, which pays the torch import and the first compile every time (the benchmark's baseline).
    warm: bool = True
    # Build all C++ kernels of a compiled graph as one shared library (one g++ run instead of one per kernel;
    # see kernel_batching). Same kernel code, bit-identical outputs. Per worker: read when a worker starts.
    batch_cpu_kernels: bool = True
    # Let Inductor vectorize CPU kernels (at::vec SIMD code). Off (default): scalar C++ loops. Validation checks
    # that Inductor traces, lowers, fuses and computes the program like eager; the SIMD flavour of the CPU code
    # is not what the exported (GPU, Triton) pairs use, and skipping it compiles ~2x faster and skips the ISA
    # probe at warm-up. Per worker: read when a worker starts.
    cpu_vectorize: bool = False
    # Run untrusted code even where Landlock is unavailable (`--unsafe-no-landlock`, config key
    # allow_unsandboxed). Off: the pool refuses to start (isolation.SandboxUnavailableError).
    allow_unsandboxed: bool = False


@dataclass
class ValidationJob:
    """One program to validate.

    `entry_point` is the class to instantiate (None: the single nn.Module subclass in the file).
    `expected_output_shapes`, when the writer knows them (the composer does), are checked exactly.
    `extra` keys the sandbox reads: "mode" ("validate", the default, or "probe": load, construct and one eager
    forward only, see `SandboxPool.probe`) and "timeout_s" (overrides SandboxOptions.timeout_s for this job).
    Jobs sent with `SandboxPool.call(task, job)` run a registered task (tasks.py) on the job instead.
    """

    id: str
    source: str
    entry_point: str | None = None
    expected_output_shapes: list[list[int]] | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)
