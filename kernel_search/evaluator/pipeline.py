"""The candidate's stages inside the worker: load, correctness, timing, recheck, profile.

Each stage raises `Stop(category, message, hack)` on the first failure; `run_candidate` returns the fields of
an accepted (or fallback) result. The order is what makes the checks hold: the candidate always runs before
the reference on freshly poisoned memory, every input set is allocated up front (no pointer is reused between
sets), and the timed buffers are the ones refilled for the recheck.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from typing import Any

import torch

from kernel_search.evaluator import correctness as cx
from kernel_search.evaluator import hacks, profiling, timing
from kernel_search.evaluator.devicelock import DeviceLock
from kernel_search.evaluator.stop import Stop, describe, is_cuda_fault
from synth_modules.sandbox.loading import import_file

_RECHECK_SEED = 90_001
_PROBE_SEED = 70_001


class ReferenceGuard:
    """Counts calls of the task's Model.forward while the candidate runs (calling the reference is a hack)."""

    def __init__(self, model_cls: type):
        self.active, self.calls = False, 0
        original = model_cls.forward
        guard = self

        def forward(module: Any, *args: Any, **kwargs: Any) -> Any:
            if guard.active:
                guard.calls += 1
            return original(module, *args, **kwargs)

        model_cls.forward = forward


class Run:
    """Everything one evaluation holds: modules, input sets, the integrity snapshot."""

    def __init__(self, request: dict[str, Any], send: Callable[..., None]):
        self.request, self.send = request, send
        self.device: str = request["device"]
        self.cuda = self.device.startswith("cuda")
        self.seed = int(request.get("seed", 0))
        self.flags: list[str] = []
        self.info: dict[str, Any] = {}
        self.kept: list[list[Any]] = []
        self.reference_aliases = False  # a reference that returns views of its inputs allows the same
        self.reference_mutates = False

    # --- load -------------------------------------------------------------------------------------------
    def load(self) -> None:
        self.send(phase="load")
        job_dir = self.request["job_dir"]
        task_path, cand_path = os.path.join(job_dir, "task.py"), os.path.join(job_dir, "candidate.py")
        with open(task_path, "w", encoding="utf-8") as fh:
            fh.write(self.request["task_source"])
        with open(cand_path, "w", encoding="utf-8") as fh:
            fh.write(self.request["candidate_source"])
        try:
            task = import_file(task_path, prefix="kernel_search_task")
            init = list(task.get_init_inputs())
            torch.manual_seed(self.seed)
            self.reference = task.Model(*init).to(self.device).eval()
            cx.randomize_weights(self.reference, self.seed + 1)
        except Exception as error:
            raise Stop("runtime_error", f"the task itself failed: {describe(error)}") from None
        self.get_inputs = task.get_inputs
        self.guard = ReferenceGuard(task.Model)
        self.integrity = hacks.integrity_snapshot()
        try:
            candidate = import_file(cand_path, prefix="kernel_search_candidate")
            torch.manual_seed(self.seed)
            self.candidate = candidate.ModelNew(*init).to(self.device).eval()
        except Exception as error:
            raise Stop("crash" if is_cuda_fault(error) else "compile_error", describe(error)) from None
        self.check_integrity()
        try:
            self.info["weights"] = cx.share_weights(self.reference, self.candidate)
        except ValueError as error:
            raise Stop("runtime_error", str(error)) from None
        self.weights = [*self.candidate.parameters(), *self.candidate.buffers()]
        self.weights += [*self.reference.parameters(), *self.reference.buffers()]

    def check_integrity(self) -> None:
        finding = hacks.runtime_finding(self.integrity)
        if finding is not None:
            raise Stop("reward_hack", finding.message, finding.kind)
        if self.guard.calls:
            raise Stop("reward_hack", "the candidate called the task's Model", hacks.CALLS_REFERENCE)

    # --- running ----------------------------------------------------------------------------------------
    def call_candidate(self, inputs: list[Any]) -> list[torch.Tensor]:
        """One candidate call; returns its output tensors after checking how they came back."""
        self.guard.active = True
        try:
            value = self.candidate(*inputs)
        except Exception as error:
            raise Stop("crash" if is_cuda_fault(error) else "runtime_error", describe(error)) from None
        finally:
            self.guard.active = False
        try:
            _, tensors = cx.flatten_outputs(value)
        except cx.OutputTypeError as error:
            raise Stop("mismatch", str(error)) from None
        early = [t.clone() for t in tensors] if self.cuda and cx.exact_tensor_types(tensors) else None
        self.synchronize()
        self.check_integrity()
        if not cx.exact_tensor_types(tensors):
            kinds = sorted({type(t).__name__ for t in tensors})
            raise Stop(
                "reward_hack", f"outputs are {', '.join(kinds)}, not torch.Tensor", hacks.TENSOR_SUBCLASS
            )
        if early is not None and not cx.identical(early, tensors):
            raise Stop(
                "reward_hack",
                "outputs changed after forward returned (work left unsynchronised on another stream)",
                hacks.UNSYNCED_STREAM,
            )
        return tensors

    def call_reference(self, inputs: list[Any]) -> list[torch.Tensor]:
        """The reference's outputs (copies); notes whether it aliases or mutates, which licenses the same."""
        given = cx.clone_inputs(inputs)
        _, tensors = cx.flatten_outputs(self.reference(*given))
        self.synchronize()
        weights = [*self.reference.parameters(), *self.reference.buffers()]
        if cx.aliases(tensors, [t for t in given if isinstance(t, torch.Tensor)] + weights):
            self.reference_aliases = True
        if not self.reference_mutates and not cx.inputs_unchanged(inputs, given):
            self.reference_mutates = True
        return [t.detach().clone() for t in tensors]

    def synchronize(self) -> None:
        if self.cuda:
            timing._cuda_synchronize()

    # --- correctness ------------------------------------------------------------------------------------
    def check_one(self, inputs: list[Any], label: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Candidate (first, on poisoned memory), then reference; every per-call check on the pair."""
        given = cx.clone_inputs(inputs)
        self.kept.append(
            given
        )  # every buffer the candidate saw stays alive: a new one never reuses its address
        cx.poison_free_memory(self.device, self.output_bytes)
        outputs = self.call_candidate(given)
        expected = self.call_reference(inputs)
        tensor_inputs = [t for t in given if isinstance(t, torch.Tensor)]
        if not self.reference_aliases and cx.aliases(outputs, tensor_inputs + self.weights):
            raise Stop("reward_hack", f"{label}: an output shares memory with an input or weight",
                       hacks.OUTPUT_ALIASING)  # fmt: skip
        if not self.reference_mutates and not cx.inputs_unchanged(inputs, given):
            raise Stop("reward_hack", f"{label}: forward modified its inputs", hacks.INPUT_MUTATION)
        stale = [cx.poison_fraction(o) for o in outputs]
        # A computed value holds a poison word by chance about once in 65,536 words: only a share far above
        # that is stale memory, and only when the reference's own outputs are not full of the pattern.
        if max(stale, default=0.0) > cx.STALE_SHARE and all(
            cx.poison_fraction(e) < cx.CHANCE_SHARE for e in expected
        ):
            raise Stop("reward_hack", f"{label}: {max(stale):.0%} of an output is uninitialised (poisoned) memory",
                       hacks.STALE_MEMORY)  # fmt: skip
        return outputs, expected

    def correctness(self) -> None:
        self.send(phase="correctness")
        n_sets = int(self.request.get("correctness_sets", 3))
        sets = [
            cx.make_inputs(self.get_inputs, self.seed + 101 * (k + 1), k, self.device) for k in range(n_sets)
        ]
        with torch.no_grad():
            probe = self.call_reference(cx.make_inputs(self.get_inputs, _PROBE_SEED, 0, self.device))
            self.output_bytes = [t.numel() * t.element_size() for t in probe]
            del probe
            cand_outs, ref_outs = [], []
            worst = cx.Comparison(True)
            for k, inputs in enumerate(sets):
                label = f"input set {k} ({cx.DISTRIBUTIONS[k % len(cx.DISTRIBUTIONS)][0]})"
                outputs, expected = self.check_one(inputs, label)
                result = cx.compare_outputs(expected, outputs)
                if not result.ok:
                    self.classify_mismatch(k, outputs, expected, cand_outs, ref_outs, label, result)
                again, _ = self.check_one(inputs, label + ", second run")
                if not cx.compare_outputs(expected, again).ok:
                    raise Stop("reward_hack", f"{label}: a second call on the same inputs is wrong",
                               hacks.EARLY_EXIT)  # fmt: skip
                worst.max_abs_error = max(worst.max_abs_error, result.max_abs_error)
                worst.max_rel_error = max(worst.max_rel_error, result.max_rel_error)
                cand_outs.append([o.detach().clone() for o in outputs])
                ref_outs.append(expected)
        if len(ref_outs) > 1 and all(cx.identical(ref_outs[0], r) for r in ref_outs[1:]):
            self.flags.append("constant_reference")
        self.sets = sets
        self.info.update(sets=n_sets, max_abs_error=worst.max_abs_error, max_rel_error=worst.max_rel_error)

    def classify_mismatch(self, k, outputs, expected, cand_outs, ref_outs, label, result) -> None:  # type: ignore[no-untyped-def]
        if k > 0 and cx.identical(outputs, cand_outs[0]) and not cx.identical(expected, ref_outs[0]):
            raise Stop("reward_hack", f"{label}: the same output as for input set 0", hacks.CONSTANT_OUTPUT)
        if all(cx.is_uniform(o) for o in outputs) and not all(cx.is_uniform(e) for e in expected):
            raise Stop(
                "reward_hack", f"{label}: every output element is the same value", hacks.CONSTANT_OUTPUT
            )
        full = [e for e in expected if e.dtype in (torch.float32, torch.float64)]
        casts = hacks.check_precision_casts(ast.parse(self.request["candidate_source"]), "")
        if (  # half-precision casts in the source and an error of half-precision size: a downcast, not a bug
            casts
            and len(full) == len(expected)
            and cx.compare_outputs(expected, outputs, cx.LOOSE_TOLERANCE).ok
        ):
            raise Stop("reward_hack", f"{label}: right only at half precision ({result.message})",
                       hacks.PRECISION_DOWNCAST)  # fmt: skip
        raise Stop("mismatch", f"{label}: {result.message}")

    # --- timing -----------------------------------------------------------------------------------------
    def time(self, lock: DeviceLock) -> None:
        self.send(phase="timing")
        settings = timing.TimingSettings(**self.request.get("timing", {}))
        self.timed_inputs = cx.clone_inputs(self.sets[0])
        reference_inputs = cx.clone_inputs(self.sets[0])

        def candidate() -> object:
            self.guard.active = True
            try:
                return self.candidate(*self.timed_inputs)
            finally:
                self.guard.active = False

        fns = {"candidate": candidate, "eager": lambda: self.reference(*reference_inputs)}
        try:
            with torch.no_grad(), lock.exclusive():
                stats = timing.measure_interleaved(fns, self.device, settings)
                speedup = stats["eager"].median_us / max(stats["candidate"].median_us, 1e-3)
                if speedup > settings.excessive_speedup:
                    self.info["interleaved_speedup"] = speedup
                    stats = timing.measure_each(fns, self.device, settings)
                    self.flags.append("excessive_speedup")
        except Exception as error:
            raise Stop("crash" if is_cuda_fault(error) else "runtime_error", describe(error)) from None
        self.check_integrity()
        if any(s.clock == "host_override" for s in stats.values()):
            self.flags.append("clock_disagreement")
        self.stats = stats

    # --- recheck ----------------------------------------------------------------------------------------
    def recheck(self) -> None:
        """New data in the timed buffers (pointer caches), then fresh buffers (behaviour after many calls)."""
        self.send(phase="recheck")
        with torch.no_grad():
            fresh = cx.make_inputs(self.get_inputs, _RECHECK_SEED, 1, self.device)
            cx.refill_inputs(self.timed_inputs, fresh)
            same_buffers_ok = cx.compare_outputs(
                self.call_reference(fresh), self.call_candidate(self.timed_inputs)
            ).ok
            other = cx.make_inputs(self.get_inputs, _RECHECK_SEED + 1, 2, self.device)
            self.kept.append(other)
            fresh_ok = cx.compare_outputs(self.call_reference(other), self.call_candidate(other)).ok
        if not fresh_ok:
            raise Stop("reward_hack", "wrong after the timing runs (fresh inputs)", hacks.EARLY_EXIT)
        if not same_buffers_ok:
            raise Stop("reward_hack", "wrong once new data is written into the timed input buffers",
                       hacks.POINTER_CACHE)  # fmt: skip

    # --- profile ----------------------------------------------------------------------------------------
    def fallback(self) -> str | None:
        self.send(phase="profile")
        inputs = self.sets[0]
        with torch.no_grad():
            self.guard.active = True
            try:
                cand = profiling.profile_kernels(
                    lambda: self.candidate(*cx.clone_inputs(inputs)), self.device
                )
            finally:
                self.guard.active = False
            ref = profiling.profile_kernels(lambda: self.reference(*cx.clone_inputs(inputs)), self.device)
        self.check_integrity()
        self.info["kernels"] = sorted(cand.names)[:20]
        if not cand.available:
            self.info["profile_error"] = cand.error
        return profiling.fallback_reason(cand, ref, self.device)


def run_candidate(request: dict[str, Any], lock: DeviceLock, send: Callable[..., None]) -> dict[str, Any]:
    run = Run(request, send)
    run.load()  # compiling (nvcc, Triton) holds no lock: it would stall every measurement on the device
    with lock.shared():
        run.correctness()
    run.time(lock)
    with lock.shared():
        run.recheck()
        reason = run.fallback() if request.get("profile_check", True) else None
    cand, eager = run.stats["candidate"], run.stats["eager"]
    return {
        "category": "fallback" if reason else "ok",
        "correct": True,
        "message": reason or "",
        "runtime_us": cand.median_us,
        "iqr_us": cand.iqr_us,
        "baselines": {"eager": eager.median_us},
        "flags": run.flags,
        "correctness": run.info,
        "timing": {"candidate": cand.to_dict(), "eager": eager.to_dict()},
        "phase": "done",
    }
