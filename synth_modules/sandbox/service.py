"""A self-confining worker: `python -m synth_modules.sandbox.service --spec JSON` (started by spawn.py).

Order matters: confine first (Landlock, privileges, rlimits, network namespace; a GPU worker imports torch
just before, without initialising CUDA), then import the handler, which initialises CUDA; so no program ever
exists in an unconfined process, and no CUDA context either unless the spec asks for the handler's trusted
`prepare(settings)` before confinement (the kernel evaluator: CUDA initialised and its device locks opened
there, the recipe its H200 workers were validated with).
The handler module provides `setup(settings) -> dict` (warm-up; its result goes into `ready`),
`handle(request, settings, scratch) -> dict` and optionally `prepare(settings)`, `check() -> list[str]` (its
own state that a program must not have changed) and `INTEGRITY_MODULES` (more namespaces to watch). Every
request gets a fresh scratch directory (also TMPDIR and the Inductor/Triton caches, unless the spec names a
trusted shared `cache_dir`), removed afterwards, so one program's files never reach the next one's compile.
A handler may report progress before its reply (protocol.report_progress). After each reply the worker kills
whatever the program left running and compares its integrity snapshot; when anything changed it says so in
the reply and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from typing import Any

from synth_modules.sandbox import limits
from synth_modules.sandbox.integrity import LEFT_RUNNING, Snapshot, import_watched
from synth_modules.sandbox.isolation import Confinement, Privileges, confine
from synth_modules.sandbox.protocol import ChannelClosed, open_progress, take_over_stdio


def _use_scratch(path: str, cache_dir: str | None = None) -> None:
    os.environ.update(TMPDIR=path, HOME=path, XDG_CACHE_HOME=os.path.join(path, ".cache"))
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(cache_dir or path, "inductor")
    os.environ["TRITON_CACHE_DIR"] = os.path.join(cache_dir or path, "triton")
    os.environ["TORCH_EXTENSIONS_DIR"] = os.path.join(path, "torch_extensions")
    tempfile.tempdir = path
    os.chdir(path)


def serve(spec: dict[str, Any]) -> None:
    control = take_over_stdio(python_stdout_to_stderr=True)
    limits.become_subreaper()
    privileges = Privileges(
        ids=tuple(spec["privileges"]["ids"]) if spec["privileges"]["ids"] else None,
        drop_caps=bool(spec["privileges"]["drop_caps"]),
    )
    scratch_root = spec["scratch"]
    for module in spec.get(
        "preimport", []
    ):  # trusted libraries only (torch): no program, no CUDA context yet
        importlib.import_module(module)
    settings = spec["settings"]
    handler = None
    if spec.get("prepare"):  # a trusted handler that sets its device up unconfined (still no program)
        handler = importlib.import_module(spec["handler"])
        if hasattr(handler, "prepare"):
            handler.prepare(settings)
    try:
        applied = confine(Confinement(**spec["confinement"]), privileges)
    except Exception as exc:  # refuse to serve: the pool reports the message
        control.send({"op": "refused", "message": f"{type(exc).__name__}: {exc}"})
        return
    cache_dir = spec.get("cache_dir")
    _use_scratch(tempfile.mkdtemp(prefix="setup-", dir=scratch_root), cache_dir)
    handler = handler or importlib.import_module(spec["handler"])
    info = handler.setup(settings)
    import_watched()
    baseline = Snapshot.take(tuple(getattr(handler, "INTEGRITY_MODULES", ())))
    control.send({"op": "ready", "pid": os.getpid(), "info": info, "isolation": applied})
    open_progress(control)
    while True:
        try:
            message = control.receive()
        except ChannelClosed:
            return
        if message.get("op") != "request":
            return
        scratch = tempfile.mkdtemp(prefix="req-", dir=scratch_root)
        _use_scratch(scratch, cache_dir)
        try:
            reply = handler.handle(message["request"], settings, scratch)
        except BaseException as exc:  # a handler must answer; one that raises costs this request only
            traceback.print_exc()
            request_id = (message.get("request") or {}).get("id")  # the pool matches replies by id
            reply = {"id": request_id, "ok": False, "category": "crash",
                     "message": f"{type(exc).__name__}: {exc}"[:2000]}  # fmt: skip
        leftovers = limits.kill_descendants()
        os.chdir(scratch_root)
        shutil.rmtree(scratch, ignore_errors=True)
        problems = baseline.problems() + (handler.check() if hasattr(handler, "check") else [])
        if leftovers:
            problems.append(f"{leftovers} process(es) {LEFT_RUNNING}")
        control.send({"op": "reply", "reply": reply, "integrity": problems})
        if problems:
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--spec", required=True, help="JSON: handler, settings, scratch, privileges, confinement"
    )
    spec = json.loads(parser.parse_args(argv).spec)
    try:
        serve(spec)
    except BaseException:  # a setup failure: the pool reads the log and starts another worker
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            limits.kill_descendants()
        sys.stderr.flush()
        os._exit(0)  # no interpreter teardown: a patched atexit hook or __del__ of a program does not run


if __name__ == "__main__":
    main()
