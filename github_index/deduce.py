"""Deduce stage: find constructor arguments and forward inputs for an extracted class by error-driven search.

Start from guesses (names, type hints, defaults, string literals the code compares against, the first layer
the model registers), run, read the error, change the input shape or the constructor argument the error points
at, and try again -- a bounded number of attempts, all inside one sandboxed child per class (`deduce_many`:
the sandbox's "deduce" task, answered in JSON).
The result is written as KernelBook-format `get_inputs()` / `get_init_inputs()` -> `[args, kwargs]`.
"""

from __future__ import annotations

import inspect
import re
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from github_index.errors import input_fixes, rank_fallbacks
from github_index.guesses import (
    TensorSpec,
    candidates_for,
    first_layer_shape,
    input_for_name,
    type_hints,
)
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.types import Category

PROGRAM_FILENAME = "<program>"
MAX_ATTEMPTS = 60
MOCK_CONFIG = "_mock_config"
MOCK_CONFIG_SOURCE = f'''
class {MOCK_CONFIG}(dict):
    """Attribute-style stand-in for a config object, holding only the fields the module reads."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"'{MOCK_CONFIG}' object has no attribute '{{name}}'") from None
'''
_MOCK_MISSING = re.compile(rf"'{MOCK_CONFIG}' object has no attribute '(\w+)'")
_IMAGE_PARAM = re.compile(r"(image_size|img_size|resolution|input_size|image_res)")
_CHANNEL_PARAM = re.compile(r"(channels|in_channels|in_chans|num_channels|input_channels)")


@dataclass
class Deduction:
    """Outcome of the search for one class (plain data: it crosses the process boundary)."""

    ok: bool
    init_args: list[str] = field(default_factory=list)
    init_kwargs: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    uses_mock_config: bool = False
    attempts: int = 0
    stage: str = "init"
    category: str | None = None
    message: str = ""
    output_shapes: list[list[int]] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)  # the errors met on the way (last few), for diagnosis

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Slot:
    """A constructor parameter (or a mock-config field) and its candidate values."""

    name: str
    candidates: list[str]
    index: int = 0
    positional: bool = False

    @property
    def expr(self) -> str:
        return self.candidates[self.index]

    def advance(self, prefer: str | None = None) -> bool:
        """Move to the next candidate (the next of family `prefer` when given); False when exhausted."""
        for i in range(self.index + 1, len(self.candidates)):
            if prefer is None or _family(self.candidates[i]) == prefer:
                self.index = i
                return True
        return False


def _error_key(message: str) -> str:
    """An error with its numbers blanked: two attempts failing the same way have the same key."""
    return re.sub(r"\d+", "#", message.splitlines()[0] if message else "")


def _family(expr: str) -> str:
    if expr.startswith(("(", "[")):
        return "sequence"
    if expr.startswith("torch.nn."):
        return "module"
    if re.fullmatch(r"-?\d+", expr):
        return "int"
    return "other"


def _describe(exc: BaseException, source_lines: list[str]) -> tuple[str, str]:
    """(`Type: message`, text of the deepest program line in the traceback)."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == PROGRAM_FILENAME and frame.lineno and frame.lineno <= len(source_lines):
            line = source_lines[frame.lineno - 1].strip()
    message = f"{type(exc).__name__}: {exc}".strip()
    return message[:2000], line


def _tensors(value: Any) -> list[Any] | None:
    """Tensor leaves of a forward's output; None unless every leaf is a tensor (what the sandbox accepts)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        leaves: list[Any] = []
        for item in value:
            sub = _tensors(item)
            if sub is None:
                return None
            leaves += sub
        return leaves
    return None


class _Search:
    """The error-driven search, run inside the sandboxed child."""

    def __init__(self, source: str, entry_point: str, max_attempts: int):
        import torch

        self.torch = torch
        self.lines = source.splitlines()
        self.namespace: dict[str, Any] = {"__name__": "__github_index_program__"}
        exec(compile(source, PROGRAM_FILENAME, "exec"), self.namespace)
        exec(MOCK_CONFIG_SOURCE, self.namespace)
        self.namespace.setdefault("torch", torch)
        self.cls = self.namespace[entry_point]
        self.max_attempts = max_attempts
        self.attempts = 0
        self.trace: list[str] = []
        self.slots: list[_Slot] = []
        self.config: dict[str, dict[str, _Slot]] = {}  # mock-config param -> field slots
        self._init_slots()

    def _init_slots(self) -> None:
        init = self.cls.__init__
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            return
        hints = type_hints(init)
        for param in list(signature.parameters.values())[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.default is not param.empty:
                if re.fullmatch(r"(pretrained|load_pretrained|download)\w*", param.name) and param.default:
                    self.slots.append(_Slot(param.name, ["False"]))
                continue
            self.slots.append(
                _Slot(
                    param.name,
                    candidates_for(param, init, hints),
                    positional=param.kind == param.POSITIONAL_ONLY,
                )
            )

    # --- values -------------------------------------------------------------------------------------
    def _slot_expr(self, slot: _Slot) -> str:
        if slot.expr == f"{MOCK_CONFIG}()":
            fields = self.config.setdefault(slot.name, {})
            items = ", ".join(f"{k!r}: {f.expr}" for k, f in fields.items())
            return f"{MOCK_CONFIG}({{{items}}})"
        return slot.expr

    def init_exprs(self) -> tuple[list[str], dict[str, str]]:
        args = [self._slot_expr(s) for s in self.slots if s.positional]
        kwargs = {s.name: self._slot_expr(s) for s in self.slots if not s.positional}
        return args, kwargs

    def _eval(self, expr: str) -> Any:
        return eval(expr, self.namespace)

    def _init_value(self, name: str) -> Any:
        for slot in self.slots:
            if slot.name == name or re.fullmatch(name, slot.name):
                try:
                    return self._eval(slot.expr)
                except Exception:
                    return None
        return None

    # --- construction -------------------------------------------------------------------------------
    def build(self) -> tuple[Any | None, str, str]:
        """Construct the module, fixing constructor arguments on errors, until it builds or budget ends.

        A local search: a change that leaves the (number-blind) error unchanged is reverted and the next
        candidate change is tried; a change that moves the error on is kept.
        """
        moves: list[tuple[_Slot, int]] = []
        last: tuple[_Slot, int] | None = None
        last_key = None
        message = line = ""
        while self.attempts < self.max_attempts:
            self.attempts += 1
            args, kwargs = self.init_exprs()
            try:
                self.torch.manual_seed(0)
                model = self.cls(
                    *[self._eval(a) for a in args], **{k: self._eval(v) for k, v in kwargs.items()}
                )
                return model, "", ""
            except Exception as exc:
                message, line = _describe(exc, self.lines)
            self.trace.append(f"init {kwargs}: {message.splitlines()[0][:200]}")
            key = _error_key(message)
            if last is not None and key == last_key:
                last[0].index = last[1]  # no progress: revert
            else:
                last_key = key
                if self._add_missing(message):
                    last = None
                    continue
                moves = self.init_moves(message, line)
            if not moves:
                return None, message, line
            slot, index = moves.pop(0)
            last = (slot, slot.index)
            slot.index = index
        return None, f"attempt budget exhausted while constructing; last error: {message}", line

    def _add_missing(self, message: str) -> bool:
        """Add a slot for a required argument hidden behind *args/**kwargs, or a missing config field."""
        missing_args = re.search(
            r"missing \d+ required (?:keyword-only |positional )?arguments?: (.*)", message
        )
        if missing_args and "__init__()" in message:
            names = re.findall(r"'(\w+)'", missing_args.group(1))
            known = {s.name for s in self.slots}
            new = [n for n in names if n not in known]
            for name in new:
                param = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY)
                self.slots.append(_Slot(name, candidates_for(param, None, {})))
            return bool(new)
        missing = _MOCK_MISSING.search(message) or re.match(r"KeyError: '(\w+)'", message)
        if missing:
            key = missing.group(1)
            for slot in self.slots:
                if slot.expr == f"{MOCK_CONFIG}()":
                    fields = self.config.setdefault(slot.name, {})
                    if key not in fields:
                        param = inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY)
                        fields[key] = _Slot(key, candidates_for(param, None, {}))
                        return True
        return False

    def init_moves(self, message: str, line: str, suspects_only: bool = False) -> list[tuple[_Slot, int]]:
        """Candidate single-argument changes for an error, most likely first."""
        prefer = None
        if re.search(
            r"'int' object is not (subscriptable|iterable)|cannot unpack non-iterable int|got int", message
        ):
            prefer = "sequence"
        elif re.search(
            r"object cannot be interpreted as an integer|'(tuple|list)' and 'int'|must be tuple of ints",
            message,
        ):
            prefer = "int"
        elif re.search(r"object is not callable", message):
            prefer = "module"
        slots = [*self.slots, *(f for fs in self.config.values() for f in fs.values())]
        text = f"{line} {message}"
        suspects = [s for s in slots if re.search(rf"\b{re.escape(s.name)}\b", text)]
        others = [] if suspects_only else [s for s in reversed(slots) if s not in suspects]
        moves: list[tuple[_Slot, int]] = []
        for group, limit in ((suspects, 8), (others, 3)):
            for slot in group:
                order = [i for i in range(len(slot.candidates)) if i != slot.index]
                order.sort(key=lambda i: (prefer is not None and _family(slot.candidates[i]) != prefer, i))
                moves += [(slot, i) for i in order[:limit]]
        return moves

    # --- forward ------------------------------------------------------------------------------------
    def initial_inputs(self, model: Any) -> list[TensorSpec]:
        image = self._init_value(_IMAGE_PARAM.pattern)
        image_size = (
            image if isinstance(image, int) else image[0] if isinstance(image, (tuple, list)) else None
        )
        channels = self._init_value(_CHANNEL_PARAM.pattern)
        main = first_layer_shape(model, image_size) or TensorSpec([2, 4, 16, 16])
        try:
            params = list(inspect.signature(model.forward).parameters.values())
        except (TypeError, ValueError):
            params = []
        required = [
            p
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        if not required and any(p.kind == p.VAR_POSITIONAL for p in params):
            return [main]
        specs = [
            input_for_name(p.name, main, image_size, channels if isinstance(channels, int) else None)
            for p in required
        ]
        if specs and _family_name(required[0].name) == "generic":
            specs[0] = main
        return specs

    def run_forward(self, model: Any, specs: list[TensorSpec]) -> tuple[list[list[int]] | None, str, str]:
        self.torch.manual_seed(0)
        try:
            inputs = [self._eval(s.expr()) for s in specs]
            with self.torch.no_grad():
                out = model(*inputs)
        except Exception as exc:
            message, line = _describe(exc, self.lines)
            return None, message, line
        tensors = _tensors(out)
        if not tensors:
            return None, f"forward returned {type(out).__name__}, not a tensor or a tuple of tensors", ""
        if any(t.numel() == 0 for t in tensors):
            return None, "forward returned an empty tensor", ""
        return [list(t.shape) for t in tensors], "", ""

    def retry_init(
        self, message: str, line: str, specs: list[TensorSpec]
    ) -> tuple[Any, list[TensorSpec]] | None:
        """A forward error no input change explains: try other values for the arguments the line names."""
        key = _error_key(message)
        for slot, index in self.init_moves(message, line, suspects_only=True)[:10]:
            if self.attempts >= self.max_attempts:
                break
            old = slot.index
            slot.index = index
            model, _, _ = self.build()
            if model is not None:
                model.eval()
                fresh = self.initial_inputs(model)
                for candidate in (specs, fresh):
                    self.attempts += 1
                    shapes, new_message, _ = self.run_forward(model, candidate)
                    if shapes is not None or _error_key(new_message) != key:
                        return model, candidate
            slot.index = old
        return None

    def search(self) -> Deduction:
        model, message, line = self.build()
        if model is None:
            return self._fail("init", message)
        model.eval()
        specs = self.initial_inputs(model)
        tried = {repr(specs)}
        queue: list[list[TensorSpec]] = []
        init_tried = False
        while self.attempts < self.max_attempts:
            self.attempts += 1
            shapes, message, line = self.run_forward(model, specs)
            if shapes is None:
                self.trace.append(f"forward {[s.expr() for s in specs]}: {message.splitlines()[0][:200]}")
            if shapes is not None:
                args, kwargs = self.init_exprs()
                return Deduction(
                    ok=True,
                    init_args=args,
                    init_kwargs=kwargs,
                    inputs=[s.expr() for s in specs],
                    uses_mock_config=any(MOCK_CONFIG in v for v in [*args, *kwargs.values()]),
                    attempts=self.attempts,
                    stage="forward",
                    output_shapes=shapes,
                    trace=self.trace[-12:],
                )
            if "missing dependency" in message:
                return self._fail("forward", message, Category.IMPORT_ERROR)
            if re.search(r"forward\(\) missing \d+ required keyword-only", message):
                return self._fail("forward", message)
            queue = [c for c in input_fixes(message, specs, line) if repr(c) not in tried] + queue
            if not queue and not init_tried:
                init_tried = True
                found = self.retry_init(message, line, specs)
                if found is not None:
                    model, specs = found
                    continue
            if not queue:
                queue = [c for c in rank_fallbacks(specs) if repr(c) not in tried]
            while queue and repr(queue[0]) in tried:
                queue.pop(0)
            if not queue:
                return self._fail("forward", message)
            specs = queue.pop(0)
            tried.add(repr(specs))
        return self._fail("forward", f"attempt budget exhausted; last error: {message}")

    def _fail(self, stage: str, message: str, category: Category | None = None) -> Deduction:
        if category is None:
            if "missing dependency" in message or message.startswith(("ImportError", "ModuleNotFoundError")):
                category = Category.IMPORT_ERROR
            else:
                category = Category.INIT_ERROR if stage == "init" else Category.EAGER_ERROR
        return Deduction(
            ok=False,
            stage=stage,
            category=str(category),
            message=message,
            attempts=self.attempts,
            trace=self.trace[-12:],
        )


def _family_name(name: str) -> str:
    if re.fullmatch(
        r"(img|image|images|imgs|pixel_values|video|.*mask.*|t|time|times|timesteps?|tokens?|ids|input_ids|labels?|targets?)",
        name.lower(),
    ):
        return "specific"
    return "generic"


def deduce_source(source: str, entry_point: str, max_attempts: int = MAX_ATTEMPTS) -> dict[str, Any]:
    """Run the search for one class (call this inside an isolated child: it executes repository code)."""
    import torch

    torch.set_num_threads(1)
    try:
        search = _Search(source, entry_point, max_attempts)
    except Exception as exc:
        message, _ = _describe(exc, source.splitlines())
        category = Category.IMPORT_ERROR if isinstance(exc, ImportError) else Category.INIT_ERROR
        return Deduction(ok=False, stage="load", category=str(category), message=message).to_dict()
    return search.search().to_dict()


def deduce_job(job: ValidationJob) -> dict[str, Any]:
    """Sandbox task (sandbox/tasks.py "deduce"): the search for one class, run in the confined child."""
    return deduce_source(job.source, str(job.entry_point), int(job.extra.get("max_attempts", MAX_ATTEMPTS)))


_FIELD_TYPES = {f.name: f.type for f in fields(Deduction)}


def _checked(answer: Any) -> Deduction:
    """The child's JSON answer as a Deduction, every field type-checked (it is untrusted data)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        return Deduction(ok=False, category=str(Category.CRASH), message="the sandbox returned no deduction")
    data: dict[str, Any] = {}
    for name, value in answer.items():
        kind = _FIELD_TYPES.get(name)
        if kind is None:
            continue
        if kind.startswith("list[str]") or kind.startswith("dict[str, str]"):
            items = value.values() if isinstance(value, dict) else value
            ok = isinstance(value, dict if kind.startswith("dict") else list) and all(
                isinstance(v, str) for v in items
            )
            ok = ok and all(isinstance(k, str) for k in value) if isinstance(value, dict) else ok
        elif kind.startswith("list[list[int]]"):
            ok = isinstance(value, list) and all(
                isinstance(s, list) and all(type(d) is int for d in s) for s in value
            )
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = type(value) is int
        else:  # str and str | None
            ok = isinstance(value, str) or (value is None and "None" in kind)
        if not ok:
            return Deduction(
                ok=False, category=str(Category.CRASH), message=f"malformed deduction field {name}"
            )
        data[name] = value
    return Deduction(**data)


def deduce_many(
    items: Iterable[tuple[str, str, str]],
    jobs: int = 1,
    timeout_s: float = 60.0,
    memory_limit_mb: int = 4096,
    max_attempts: int = MAX_ATTEMPTS,
    allow_unsandboxed: bool = False,
) -> Iterator[tuple[str, Deduction]]:
    """Deduce (id, source, entry_point) items in the sandbox (sandbox/tasks.py); yields (id, Deduction).

    Every class runs in a forked, confined child of a warm sandbox worker (Landlock, no privileges,
    allow-listed environment, memory cap, process-group kill); its answer comes back as JSON and is
    type-checked here. Yields in submission order as results arrive.
    """
    options = SandboxOptions(
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb,
        compile=False,
        allow_unsandboxed=allow_unsandboxed,
    )
    items = list(items)
    if not items:
        return
    with SandboxPool(max(1, min(jobs, len(items))), options) as pool:
        futures = [
            (key, pool.call("deduce", ValidationJob(id=key, source=source, entry_point=entry,
                                                     extra={"max_attempts": max_attempts})))
            for key, source, entry in items
        ]  # fmt: skip
        for key, future in futures:
            verdict = future.result()
            if verdict.ok:
                yield key, _checked(verdict.checks.get("result"))
            elif verdict.category == str(Category.TIMEOUT):
                message = f"deduction over {timeout_s:.0f}s"
                yield key, Deduction(ok=False, category=verdict.category, message=message)
            else:
                yield key, Deduction(ok=False, category=verdict.category, message=verdict.message)


def render_program(source: str, deduction: Deduction) -> str:
    """The program file: the extracted source plus get_inputs() / get_init_inputs() (KernelBook format)."""
    lines = source.rstrip("\n").splitlines()
    if "import torch" not in lines:
        at = 1 if lines and lines[0].startswith("from __future__") else 0
        lines.insert(at, "import torch")
    parts = ["\n".join(lines)]
    if deduction.uses_mock_config:
        parts.append(MOCK_CONFIG_SOURCE.strip())
    inputs = ", ".join(deduction.inputs)
    args = ", ".join(deduction.init_args)
    kwargs = ", ".join(f"{k!r}: {v}" for k, v in deduction.init_kwargs.items())
    parts.append(f"def get_inputs():\n    return [{inputs}]")
    parts.append(f"def get_init_inputs():\n    return [[{args}], {{{kwargs}}}]")
    return "\n\n\n".join(parts) + "\n"
