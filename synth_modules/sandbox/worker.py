"""The warm sandbox worker: `python -m synth_modules.sandbox.worker --base-dir DIR [--no-warm]`.

Started by the pool (spawn.IsolatedWorker) with the allow-listed environment of environment.py. It imports torch once, warms Inductor once, then serves jobs
over stdin/stdout (one JSON object per line). Each job runs in a forked child, so the child starts warm and
whatever the program does to its interpreter (patching torch, leaking memory) dies with it. The child:
new session, own temp dir / Inductor cache / stdio files, empty network namespace, rlimits, no privileges
(`nobody`, or uid 0 without capabilities), Landlock. The worker enforces the wall-clock timeout, kills the
child's process group and every descendant (it is their subreaper), and turns a death into a verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import math
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch

from synth_modules.sandbox import cgroups, child, kernel_batching, limits, tasks
from synth_modules.sandbox.api import SandboxOptions, ValidationJob
from synth_modules.sandbox.isolation import Confinement, Privileges, confine, decide_privileges
from synth_modules.sandbox.protocol import Channel, ChannelClosed, take_over_stdio
from synth_modules.sandbox.warmup import warm_up
from synth_modules.types import Category, Stage, Verdict

_STDERR_TAIL = 800
_STEP_STAGES = {
    "load": Stage.LOAD,
    "init": Stage.INIT,
    "inputs": Stage.EAGER,
    "eager": Stage.EAGER,
    "degenerate": Stage.DEGENERATE,
    "compile": Stage.COMPILE,
    "compare": Stage.COMPARE,
    "task": Stage.SANDBOX,
}
_MEMORY_STDERR = re.compile(
    r"MemoryError|bad_alloc|Cannot allocate memory|can't allocate memory|out of memory"
)


@dataclass
class WorkerDirs:
    base: str  # created by the pool; world-traversable so an unprivileged child can read the warm caches
    tmp: str  # the worker's TMPDIR, shared between workers (Inductor's precompiled headers live beneath it)
    warm_cache: str  # the worker's own Inductor cache
    jobs: str  # one private directory per job, removed after it
    cgroup: str | None = None  # the cgroup v2 leaf every child joins (memory.max = the job's cap), if any

    @classmethod
    def under(cls, base: str) -> WorkerDirs:
        tmp = tempfile.gettempdir()
        dirs = cls(base, tmp, os.path.join(base, "warm"), os.path.join(base, "jobs"))
        for path in (dirs.base, dirs.warm_cache, dirs.jobs):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)
        return dirs


# --- child side ----------------------------------------------------------------------------------------------
def _redirect_stdio(job_dir: str) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
        target = os.open(os.path.join(job_dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)


def _point_caches_at(job_dir: str) -> None:
    """Every cache and temp file of the child goes to its own directory."""
    os.environ.update(
        TORCHINDUCTOR_CACHE_DIR=os.path.join(job_dir, "inductor"),
        TRITON_CACHE_DIR=os.path.join(job_dir, "triton"),
        TMPDIR=job_dir,
        HOME=job_dir,
        XDG_CACHE_HOME=os.path.join(job_dir, ".cache"),
    )
    tempfile.tempdir = job_dir
    # Inductor keeps precompiled headers in a directory fixed at import; already-built ones (the warm-up's)
    # stay readable, new ones must be written where this child may write.
    codecache = sys.modules.get("torch._inductor.codecache")
    if codecache is not None and hasattr(codecache, "_HEADER_DIR"):
        codecache._HEADER_DIR = os.path.join(job_dir, "pch")
        codecache._HEADER_LOCK_DIR = os.path.join(job_dir, "pch", "locks")


def _confine(
    options: SandboxOptions, job_dir: str, dirs: WorkerDirs, privileges: Privileges
) -> dict[str, Any]:
    """The shared confinement (isolation.py) for one forked child: writes only beneath its job dir."""
    confinement = Confinement(
        write_roots=[job_dir],
        read_roots=[dirs.tmp, dirs.warm_cache],
        # CUDA reserves huge virtual ranges: an address-space cap would break it
        address_space_mb=options.memory_limit_mb if options.device == "cpu" else None,
        cpu_seconds=math.ceil(options.timeout_s) + 10,
        gpu=options.device != "cpu",
        allow_unsandboxed=options.allow_unsandboxed,
    )
    in_cgroup = False
    if dirs.cgroup:  # before the privilege drop: moving into a cgroup needs the rights the worker has
        with contextlib.suppress(OSError):
            cgroups.join(dirs.cgroup)
            in_cgroup = True
    applied = confine(confinement, privileges)
    caps = (["cgroup-v2"] if in_cgroup else []) + (["rlimit-as"] if options.device == "cpu" else [])
    applied["memory"] = "+".join(caps) or "none"
    return applied


def _child_main(
    job: ValidationJob,
    options: SandboxOptions,
    job_dir: str,
    result_fd: int,
    dirs: WorkerDirs,
    privileges: Privileges,
) -> None:
    """Runs in the forked child; never returns."""
    channel = Channel(-1, result_fd)
    try:
        os.setsid()
        _redirect_stdio(job_dir)
        faulthandler.enable()
        os.chdir(job_dir)
        _point_caches_at(job_dir)
        task = job.extra.get("task")
        run = tasks.resolve(task) if task else None  # imported before confinement: trusted code only
        channel.send({"isolation": _confine(options, job_dir, dirs, privileges)})
        if run is not None:
            channel.send({"step": "task"})
            result = json.loads(json.dumps(run(job)))  # plain JSON or an error here, in the child
            verdict = Verdict(ok=True, stage="task", checks={"result": result})
        else:
            verdict = child.run_job(job, options, lambda step: channel.send({"step": step}))
        channel.send({"verdict": verdict.to_dict()})
    except BaseException as exc:  # the sandbox itself failed: report it rather than die silently
        with contextlib.suppress(BaseException):
            failed = Verdict.reject(
                Stage.SANDBOX, Category.CRASH, f"sandbox setup failed: {child.describe(exc)}"
            )
            channel.send({"verdict": failed.to_dict()})
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)


# --- worker side ---------------------------------------------------------------------------------------------
def _read_available(fd: int) -> tuple[bytes, bool]:
    """Whatever can be read from `fd` without blocking, and whether end of file was reached."""
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            return data, False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return data, True
        data += chunk


def _stderr_tail(job_dir: str) -> str:
    """The end of the child's stderr, or the start of a fatal-error report (segfault) when there is one."""
    try:
        with open(os.path.join(job_dir, "stderr.txt"), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * _STDERR_TAIL))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    fatal = text.rfind("Fatal Python error")
    if fatal >= 0:
        return text[fatal : fatal + _STDERR_TAIL].split("\n\nExtension modules")[0].strip()
    return text[-_STDERR_TAIL:].strip()


@dataclass
class ChildOutcome:
    messages: list[dict[str, Any]]
    status: int | None
    timed_out: bool
    seconds: float


class ParentGone(Exception):
    """The pool closed our stdin while a job ran: stop everything."""


def _watch_child(pid: int, result_fd: int, control: Channel, timeout: float) -> ChildOutcome:
    """Collect the child's messages until it exits or the deadline passes."""
    start = time.monotonic()
    pidfd = os.pidfd_open(pid)
    buffer = b""
    timed_out = False
    try:
        eof = False
        while True:
            remaining = timeout - (time.monotonic() - start)
            if remaining <= 0:
                timed_out = True
                break
            watched = [pidfd, control.read_fd] + ([] if eof else [result_fd])
            ready, _, _ = select.select(watched, [], [], remaining)
            if control.read_fd in ready:
                raise ParentGone()
            if result_fd in ready:
                chunk = os.read(result_fd, 1 << 16)
                eof = not chunk
                buffer += chunk
            if pidfd in ready:
                # The child exited; a grandchild may still hold the pipe open, so take only what is there.
                data, _ = _read_available(result_fd)
                buffer += data
                break
    finally:
        os.close(pidfd)
    if timed_out:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    messages = []
    for line in buffer.splitlines():
        with contextlib.suppress(ValueError):
            messages.append(json.loads(line))
    return ChildOutcome(messages, status, timed_out, time.monotonic() - start)


def _classify(outcome: ChildOutcome, timeout: float, job_dir: str) -> Verdict:
    verdicts = [m["verdict"] for m in outcome.messages if "verdict" in m]
    if verdicts and not outcome.timed_out:
        return Verdict.from_dict(verdicts[-1])
    steps = [m["step"] for m in outcome.messages if "step" in m]
    last = steps[-1] if steps else None
    stage = _STEP_STAGES.get(last, Stage.SANDBOX) if last else Stage.SANDBOX
    if outcome.timed_out:
        where = f" during {last}" if last else " before the program started"
        return Verdict.reject(stage, Category.TIMEOUT, f"exceeded the {timeout:g} s wall-clock limit{where}")
    tail = _stderr_tail(job_dir)
    code = os.waitstatus_to_exitcode(outcome.status) if outcome.status is not None else None
    if code is not None and code < 0:
        how = f"killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code} without a result (sys.exit / os._exit?)"
    where = f" during {last}" if last else ""
    message = f"program {how}{where}" + (f"; stderr tail: {tail[-400:]}" if tail else "")
    category = Category.MEMORY_LIMIT if _MEMORY_STDERR.search(tail) else Category.CRASH
    return Verdict.reject(stage, category, message)


def run_one(
    job: ValidationJob, options: SandboxOptions, dirs: WorkerDirs, privileges: Privileges, control: Channel
) -> tuple[Verdict, dict[str, Any]]:
    """Fork, confine, validate, supervise, clean up. Returns the verdict and the isolation layers applied."""
    timeout = float(job.extra.get("timeout_s", options.timeout_s))
    job_dir = tempfile.mkdtemp(prefix="job-", dir=dirs.jobs)
    if privileges.ids:
        os.chown(job_dir, *privileges.ids)
    oom_before = cgroups.oom_kills(dirs.cgroup) if dirs.cgroup else 0
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        control.close()
        _child_main(job, options, job_dir, write_fd, dirs, privileges)
    os.close(write_fd)
    try:
        outcome = _watch_child(pid, read_fd, control, timeout)
        verdict = _classify(outcome, timeout, job_dir)
        if dirs.cgroup and verdict.category == Category.CRASH and cgroups.oom_kills(dirs.cgroup) > oom_before:
            verdict = Verdict.reject(
                verdict.stage, Category.MEMORY_LIMIT, f"over the memory cap: {verdict.message}"
            )
    finally:
        os.close(read_fd)
        limits.kill_descendants()
        shutil.rmtree(job_dir, ignore_errors=True)
    isolation = next((m["isolation"] for m in outcome.messages if "isolation" in m), {})
    verdict.seconds = round(outcome.seconds, 4)
    return verdict, isolation


def _configure_inductor(options: SandboxOptions) -> None:
    """Per-worker compile settings, applied before the warm-up so every forked child inherits them."""
    if options.batch_cpu_kernels:
        kernel_batching.install()
    if not options.cpu_vectorize:
        import torch._inductor.config as inductor_config

        # No vector ISA at all: scalar kernels, and no probe builds of AVX test programs at warm-up (~10 s).
        inductor_config.cpp.vec_isa_ok = False


def serve(base_dir: str, warm: bool) -> None:
    control = take_over_stdio()
    limits.become_subreaper()
    torch.set_num_threads(1)
    dirs = WorkerDirs.under(base_dir)
    privileges = decide_privileges([torch.__file__])
    try:
        config = control.receive()
    except ChannelClosed:
        return
    options = SandboxOptions(**config["options"])
    dirs.cgroup = config.get("cgroup")
    _configure_inductor(options)
    warmup_timings: dict[str, float] = {}
    if warm:
        backend = options.compile_backend if options.compile else "eager"
        warmup_timings = warm_up(backend, tuple(options.extra_allowed_imports), gpu=options.device != "cpu")
    control.send({"op": "ready", "pid": os.getpid(), "warmup": warmup_timings, "user": privileges.describe()})
    while True:
        try:
            message = control.receive()
        except ChannelClosed:
            return
        if message.get("op") != "job":
            return
        job = ValidationJob(**message["job"])
        job_options = SandboxOptions(**message["options"])
        try:
            verdict, isolation = run_one(job, job_options, dirs, privileges, control)
        except ParentGone:
            return
        control.send({"op": "result", "verdict": verdict.to_dict(), "isolation": isolation})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-dir", required=True)
    parser.add_argument("--no-warm", action="store_true", help="fresh-interpreter mode: skip the warm-up")
    args = parser.parse_args(argv)
    try:
        serve(args.base_dir, warm=not args.no_warm)
    finally:
        limits.kill_descendants()
        # The pool removes this directory too, but not if it died: then the worker is the last one to know.
        shutil.rmtree(args.base_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
