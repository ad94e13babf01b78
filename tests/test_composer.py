"""The built-in composer: every catalog op reachable in a valid program (real sandbox: eager, torch.compile,
compare, shape and degenerate checks), determinism, final_pattern faithful to the code, and variety."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import random
import re
import time

import pytest

import operators
from operators import Kind
from synth_modules.analysis.opnames import normalize_ops
from synth_modules.analysis.opseq import normalized_op_sequence
from synth_modules.backends.builtin import BuiltinBackend
from synth_modules.composer import compose
from synth_modules.config import GeneratorConfig
from synth_modules.program import find_module_classes, make_entry_point
from synth_modules.sampling import UniformSampler, sample_id, sample_rng
from synth_modules.sandbox import SandboxOptions, SandboxPool, ValidationJob
from synth_modules.sandbox.static_checks import check_static
from synth_modules.types import Generation, GenerationRequest, Sample

CONFIG = GeneratorConfig(seed=0)


def _generate(sample: Sample, attempt: int = 0) -> Generation:
    backend = BuiltinBackend(CONFIG)
    request = GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id), attempt=attempt)
    return asyncio.run(backend.generate(request))


def _samples(n: int, **overrides: object) -> list[Sample]:
    sampler = UniformSampler(GeneratorConfig(**overrides) if overrides else CONFIG)
    return [sampler.sample(i) for i in range(n)]


@pytest.fixture(scope="module")
def corpus() -> list[Generation]:
    return [_generate(s) for s in _samples(200)]


# ------------------------------------------------------------------------------------------ contract & speed


def test_programs_follow_the_contract(corpus: list[Generation]) -> None:
    for gen in corpus:
        verdict = check_static(gen.source, gen.entry_point)
        assert verdict.ok, f"{gen.entry_point}: {verdict.message}\n{gen.source}"
        tree = ast.parse(gen.source)
        classes = find_module_classes(tree)
        assert [c.name for c in classes] == [gen.entry_point]
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert {"get_inputs", "get_init_inputs"} <= functions
        imports = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        assert imports <= {"torch", "torch.nn", "torch.nn.functional", "math", "typing"}
        assert gen.expected_output_shapes and all(gen.expected_output_shapes)
        assert gen.backend == "builtin" and gen.model == "builtin-composer-v1"
        assert re.fullmatch(r"[0-9a-f]{64}", gen.prompt_sha256)


def test_no_program_is_a_lone_compute_op() -> None:
    """One kind of op (maybe repeated) plus reshapes is a KernelBench level-1 problem: the composer adds an op
    rather than have the contamination gate reject the sample on every retry."""
    config = GeneratorConfig(seed=3, num_core_ops_range=[1, 1], num_compound_ops_range=[0, 0])
    sampler, backend = UniformSampler(config), BuiltinBackend(config)
    lone = 0
    for index in range(150):
        sample = sampler.sample(index)
        lone += len(set(normalize_ops(sample.sampled_ops))) < 2
        request = GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id))
        gen = asyncio.run(backend.generate(request))
        ops = normalized_op_sequence(gen.source, gen.entry_point)
        assert len(set(ops)) >= 2, f"{sample.sampled_ops} -> {gen.final_pattern} ({ops})\n{gen.source}"
    assert lone >= 10  # the case this guards against was sampled


def test_entry_point_is_named_after_the_final_pattern() -> None:
    sample = _samples(1)[0]
    gen = _generate(sample)
    assert gen.entry_point == make_entry_point(gen.final_pattern, sample.id)
    assert f"class {gen.entry_point}(nn.Module)" in gen.source


def test_composition_takes_milliseconds() -> None:
    samples = _samples(60)
    start = time.perf_counter()
    for i, sample in enumerate(samples):
        compose(sample, sample_rng(sample.seed, sample.index, "compose:0"))
        assert i < 60
    mean_ms = (time.perf_counter() - start) * 1000 / len(samples)
    assert mean_ms < 250, f"{mean_ms:.0f} ms per program"


# --------------------------------------------------------------------------------------------- determinism


def test_composer_is_deterministic_per_sample_and_attempt() -> None:
    for sample in _samples(25, num_compound_ops_range=[0, 2]):
        a, b = _generate(sample, attempt=0), _generate(sample, attempt=0)
        assert a.source == b.source and a.final_pattern == b.final_pattern
        assert a.prompt_sha256 == b.prompt_sha256
    differing = sum(_generate(s, 0).source != _generate(s, 1).source for s in _samples(20))
    assert differing >= 18, "a repair attempt must compose a different program"


# ------------------------------------------------------------------------------ final_pattern vs the code


def _markers(op: operators.OpSpec) -> set[str]:
    """Text that appears in a program whenever `op` is used, in any of its emission forms."""
    marks = {op.module + "("} if op.module else set()
    for form in _all_forms(op):
        marks.update(name + "(" for name in re.findall(r"[A-Za-z_][\w.]*(?=\()", form))
        marks.update(
            sym for sym in (" + ", " - ", " * ", " / ", " ** ", " @ ", "[:, ", "[..., ", ".mT") if sym in form
        )
        if form.startswith("-{x}"):
            marks.add("= -")
    return marks


def _all_forms(op: operators.OpSpec) -> list[str]:
    if not callable(op.functional):
        return list(op.functional)
    forms: set[str] = set()
    rng = random.Random(0)
    for shape in ((4, 16), (2, 6, 20), (2, 4, 12, 10), (1, 3, 6, 8, 8), (4, 8, 16)):
        if len(shape) not in op.ranks:
            continue
        for _ in range(30):
            args = op.make_args(rng, shape)
            if args is not None:
                forms.update(op.functional_forms(args))
    forms.add("F.embedding(")  # the positional-embedding form
    return sorted(forms)


def _forward_statements(source: str, entry: str) -> int:
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == entry)
    forward = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    return sum(isinstance(s, ast.Assign) for s in forward.body)


def test_final_pattern_matches_the_code(corpus: list[Generation]) -> None:
    markers = {name: _markers(op) for name, op in operators.CATALOG.items()}
    for gen in corpus:
        implied = sum(len(operators.get(op).implies) for op in gen.final_pattern)
        assert _forward_statements(gen.source, gen.entry_point) == len(gen.final_pattern) - implied, (
            gen.source
        )
        for op in gen.final_pattern:
            assert operators.canonical_name(op) == op
            assert any(m in gen.source for m in markers[op]), f"{op} not visible in\n{gen.source}"


def test_sampled_ops_mostly_survive(corpus: list[Generation]) -> None:
    samples = _samples(200)
    kept = total = 0
    for sample, gen in zip(samples, corpus, strict=True):
        for op in sample.sampled_ops:
            total += 1
            kept += op in gen.final_pattern
    assert kept / total > 0.95, f"only {kept}/{total} sampled ops placed"


# ------------------------------------------------------------------------------------------------- variety


def _has_skip_connection(source: str) -> bool:
    """forward combines two different activations (x + h, torch.add(x, h), x.mul(h), ...)."""
    tree = ast.parse(source)
    forward = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "forward")
    for node in ast.walk(forward):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.left, ast.Name)
            and isinstance(node.right, ast.Name)
            and node.left.id != node.right.id
        ):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names = [a.id for a in node.args if isinstance(a, ast.Name)]
            if isinstance(node.func.value, ast.Name) and node.func.value.id not in {"torch", "F", "self"}:
                names.append(node.func.value.id)
            if node.func.attr in {"add", "sub", "mul", "maximum", "minimum", "lerp"} and len(set(names)) >= 2:
                return True
    return False


def _input_shapes(source: str) -> tuple:
    """The shapes get_inputs() makes, read through the module-level size constants it uses."""
    namespace: dict = {}
    exec(compile(source, "program.py", "exec"), namespace)  # our own composer's output
    return tuple(tuple(t.shape) for t in namespace["get_inputs"]())


def test_variety(corpus: list[Generation]) -> None:
    input_shapes = {_input_shapes(g.source) for g in corpus}
    ranks = {len(shape) for g in corpus for shape in g.expected_output_shapes}
    module_style = sum("= nn." in g.source and "nn.Parameter" not in g.source for g in corpus)
    functional_style = sum("nn.Parameter(" in g.source and "F." in g.source for g in corpus)
    residual = sum(_has_skip_connection(g.source) for g in corpus)
    keyword_init = sum("], {'" in g.source for g in corpus)
    constants = sum(bool(re.search(r"self\.\w+ = \w+\n", g.source)) for g in corpus)
    repeats = sum(
        any(a == b for a, b in zip(g.final_pattern, g.final_pattern[1:], strict=False)) for g in corpus
    )
    assert len(input_shapes) >= 150
    assert ranks >= {2, 3, 4}
    assert module_style >= 10 and functional_style >= 10
    assert residual >= 10
    assert keyword_init >= 10 and constants >= 20
    assert repeats >= 10
    assert len({g.source for g in corpus}) == len(corpus)


# ------------------------------------------------------------------------- every op in a valid program


def _plans_for(missing: list[str], rng: random.Random, base_index: int, per_program: int) -> list[Sample]:
    """Small samples that between them ask for every op in `missing` (a rank-compatible core op leads)."""
    cores = operators.core_ops()
    todo = list(missing)
    rng.shuffle(todo)
    plans = []
    while todo:
        chunk, todo = todo[:per_program], todo[per_program:]
        core = [n for n in chunk if operators.get(n).kind == Kind.CORE]
        compound = [n for n in chunk if operators.get(n).kind == Kind.COMPOUND]
        supporting = [n for n in chunk if operators.get(n).kind == Kind.SUPPORTING]
        if not core:
            ranks = set().union(*(operators.get(n).ranks for n in chunk))
            fitting = [c.name for c in cores if c.ranks & ranks] or [c.name for c in cores]
            core.append(rng.choice(fitting))
        index = base_index + len(plans)
        plans.append(Sample(index, sample_id(99, index), 99, core, compound, supporting))
    return plans


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_sampleable_op_is_reachable_in_a_valid_program() -> None:
    sampleable = [op.name for op in operators.all_ops(include_unsupported=False)]
    missing = list(sampleable)
    rng = random.Random(5)
    rounds: list[str] = []
    with SandboxPool(2, SandboxOptions(timeout_s=120)) as pool:
        for round_no in range(6):
            per_program = 6 if round_no == 0 else 2  # pack first, then give the stragglers room
            plans = _plans_for(missing, rng, 1000 * round_no, per_program)
            gens = [_generate(s, attempt=round_no) for s in plans]
            futures = [
                pool.submit(
                    ValidationJob(
                        id=hashlib.sha1(g.source.encode()).hexdigest()[:12],
                        source=g.source,
                        entry_point=g.entry_point,
                        expected_output_shapes=g.expected_output_shapes,
                    )
                )
                for g in gens
            ]
            valid_ops: set[str] = set()
            failures = []
            for gen, future in zip(gens, futures, strict=True):
                verdict = future.result()
                if verdict.ok:
                    valid_ops.update(gen.final_pattern)
                else:
                    failures.append(f"{gen.final_pattern}: {verdict.category} {verdict.message[:160]}")
            missing = [name for name in missing if name not in valid_ops]
            rounds.append(
                f"round {round_no}: {len(gens)} programs, {len(failures)} invalid, {len(missing)} ops left"
            )
            if not missing:
                break
    print("\n".join(rounds))
    assert not missing, "\n".join([*rounds, f"never valid: {missing}", *failures[:10]])
