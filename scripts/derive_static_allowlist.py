"""Regenerate synth_modules/data/static_allowlist.json, the static checks' allow-list (reviewed data).

    PYTHONPATH=. python scripts/derive_static_allowlist.py [--samples 400] [--check]

The list is derived from two sources and written as plain sorted names, so a change shows up as a reviewable
diff: (1) what accepted programs really use -- the built-in composer's output over the operator catalog, the
program fixtures and generated_programs/sample -- and (2) the op families of the installed torch (ATen
functions, nn layers, F / init / linalg / fft / special functions, Tensor and nn.Module methods) minus the
reviewed exclusions below (host access, serialization, string-evaluating compilers, global state). The script
fails if (1) is not inside the result: every program the composer writes must stay accepted. `--check`
compares with the committed file instead of writing it.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import math
import sys
import types
import typing
from collections.abc import Iterable
from pathlib import Path

import numpy
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "synth_modules" / "data" / "static_allowlist.json"
PROGRAM_SOURCES = ("tests/fixtures/programs", "tests/fixtures/sandbox_corpus", "generated_programs/sample")

# --- reviewed exclusions (why each is here: docs/sandbox.md, "Static checks") ------------------------------------
TORCH_EXCLUDE = {
    "from_file", "load", "save", "compile", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
    "use_deterministic_algorithms", "fork", "wait", "vmap", "cond", "while_loop", "import_ir_module",
    "import_ir_module_from_buffer", "parse_ir", "parse_schema", "parse_type_comment", "merge_type_from_type_comment",
    "unify_type_list", "get_file_path", "prepare_multiprocessing_environment", "init_num_threads",
}  # fmt: skip
# torch names outside the ATen function table that model code uses (classes, constants, predicates).
TORCH_EXTRA = {
    "Size", "Tensor", "Generator", "device", "dtype", "finfo", "iinfo", "layout", "memory_format", "no_grad",
    "enable_grad", "inference_mode", "autocast", "e", "pi", "inf", "nan", "newaxis", "channels_last",
    "channels_last_3d", "contiguous_format", "preserve_format", "strided", "sparse_coo", "broadcast_shapes",
    "get_default_dtype", "is_grad_enabled", "is_inference_mode_enabled", "is_tensor", "typename", "unique",
    "unravel_index", "from_dlpack", "sym_float", "sym_int", "sym_max", "sym_min", "sym_not", "sym_sqrt", "sym_ite",
    "SymInt", "SymFloat", "SymBool", "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor",
    "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor", "lu", "pca_lowrank", "svd_lowrank",
}  # fmt: skip
# dtype objects (torch.float32, torch.bfloat16, ...): a program states its dtype (docs/sizes_and_dtypes.md)
DTYPES = {
    name for name, value in vars(torch).items() if isinstance(value, torch.dtype) and not name.startswith("_")
}
F_EXCLUDE = {"has_torch_function", "has_torch_function_unary", "has_torch_function_variadic",
             "handle_torch_function", "boolean_dispatch", "assert_int_or_pair"}  # fmt: skip
TENSOR_EXCLUDE = {"share_memory_", "is_shared", "storage", "untyped_storage", "storage_type", "set_", "new"}
MODULE_EXCLUDE = {"compile", "share_memory"}
TYPING_NAMES = {
    "Any", "Optional", "List", "Tuple", "Dict", "Union", "Callable", "Sequence", "Iterable", "Iterator", "Mapping",
    "Set", "FrozenSet", "Type", "TypeVar", "Generic", "Final", "ClassVar", "Literal", "TYPE_CHECKING", "cast",
    "overload", "Annotated", "Protocol", "NamedTuple", "MutableMapping", "MutableSequence", "Hashable", "Sized",
    "Collection", "DefaultDict", "OrderedDict", "Deque", "Counter", "Text", "NoReturn", "Self", "TypeAlias",
}  # fmt: skip
CUDA_NAMES = {"is_available", "device_count", "is_bf16_supported", "current_device", "get_device_capability",
              "get_device_name"}  # fmt: skip
# Parameters and buffers layers create that are not constructor arguments.
LAYER_TENSORS = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked", "in_proj_weight",
                 "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight", "bias_k", "bias_v", "out_proj",
                 "self_attn", "multihead_attn", "linear1", "linear2", "norm1", "norm2", "norm3", "dropout1",
                 "dropout2", "dropout3", "activation", "layers", "original", "original0", "original1",
                 "parametrizations", "values", "indices", "args", "training"}  # fmt: skip
BUILTIN_TYPES = (str, bytes, list, dict, tuple, set, frozenset, int, float, complex, bool, slice, range)

# --- repository policy (github_index): the packages github_index/closure.py keeps, each reviewed ------------------
REPOSITORY_MODULES: dict[str, set[str]] = {
    "torch": {"jit", "autograd", "utils", "amp", "distributions"},
    "torch.jit": {"is_scripting", "is_tracing", "ignore", "unused", "Final"},
    "torch.autograd": {"Function", "Variable", "grad"},
    "torch.utils": {"checkpoint"},
    "torch.utils.checkpoint": {"checkpoint", "checkpoint_sequential"},
    "torch.amp": {"autocast", "custom_fwd", "custom_bwd"},
    "torch.cuda": {"amp"},
    "torch.cuda.amp": {"autocast", "custom_fwd", "custom_bwd"},
    "torch.nn": {"utils", "modules", "parameter", "attention"},
    "torch.nn.utils": {"weight_norm", "spectral_norm", "remove_weight_norm", "parametrizations", "rnn",
                       "clip_grad_norm_"},
    "torch.nn.utils.parametrizations": {"weight_norm", "spectral_norm", "orthogonal"},
    "torch.nn.utils.rnn": {"pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
                           "PackedSequence"},
    "torch.nn.parameter": {"Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"},
    "torch.nn.attention": {"sdpa_kernel", "SDPBackend"},
    "einops": {"rearrange", "repeat", "reduce", "einsum", "pack", "unpack", "parse_shape", "layers"},
    "einops.layers": {"torch"},
    "einops.layers.torch": {"Rearrange", "Reduce", "EinMix"},
    "functools": {"partial", "reduce", "lru_cache", "wraps", "cache", "cached_property", "update_wrapper",
                  "total_ordering", "partialmethod"},
    "collections": {"OrderedDict", "namedtuple", "defaultdict", "deque", "Counter", "abc"},
    "collections.abc": {"Iterable", "Sequence", "Mapping", "Callable", "Iterator", "MutableMapping"},
    "dataclasses": {"dataclass", "field", "fields", "asdict", "astuple", "replace", "is_dataclass", "InitVar",
                    "MISSING"},
    "abc": {"ABC", "abstractmethod", "abstractproperty"},
    "enum": {"Enum", "IntEnum", "Flag", "IntFlag", "auto", "unique"},
    "copy": {"copy", "deepcopy"},
    "numbers": {"Number", "Integral", "Real", "Complex", "Rational"},
    "warnings": {"warn", "filterwarnings", "simplefilter", "catch_warnings"},
    "contextlib": {"contextmanager", "nullcontext", "suppress", "ExitStack"},
    "random": {"random", "randint", "choice", "choices", "shuffle", "uniform", "gauss", "sample", "seed",
               "randrange", "normalvariate", "Random"},
    "string": {"ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits", "punctuation",
               "printable", "whitespace"},
    "re": {"compile", "match", "search", "sub", "split", "findall", "finditer", "fullmatch", "escape",
           "IGNORECASE", "I", "MULTILINE", "M", "DOTALL", "S"},
    "packaging": {"version"},
    "packaging.version": {"parse", "Version"},
    "__future__": {"annotations", "division", "print_function", "absolute_import"},
}  # fmt: skip
OPERATOR_EXCLUDE = {"attrgetter", "methodcaller"}  # attribute access by computed name
NUMPY_EXCLUDE = {"load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt", "fromfile",
                 "fromregex", "memmap", "DataSource", "info", "show_config", "show_runtime", "get_include",
                 "set_printoptions", "setbufsize", "seterr", "seterrcall", "frompyfunc", "vectorize",
                 "ctypeslib", "lookfor", "source", "test"}  # fmt: skip


def public(module: object) -> list[str]:
    return [name for name in dir(module) if not name.startswith("_")]


def functions(module: types.ModuleType, exclude: Iterable[str] = ()) -> set[str]:
    """Public callables of `module` that are neither classes nor modules."""
    names = set()
    for name in public(module):
        value = getattr(module, name)
        if callable(value) and not isinstance(value, (type, types.ModuleType)) and name not in exclude:
            names.add(name)
    return names


def nn_layers() -> set[str]:
    names = {
        n for n in public(nn) if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module)
    }
    return names | {"Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"}


def layer_attributes() -> set[str]:
    """Attribute names of layer instances: their constructor arguments, constants and created tensors."""
    import inspect

    names = set(LAYER_TENSORS)
    for name in nn_layers():
        cls = getattr(nn, name)
        names.update(getattr(cls, "__constants__", []))
        with contextlib.suppress(TypeError, ValueError):
            names.update(p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args"))
    for kind in ("ih", "hh"):
        for layer in range(8):
            for suffix in ("", "_reverse"):
                names.update({f"weight_{kind}_l{layer}{suffix}", f"bias_{kind}_l{layer}{suffix}"})
    names.update({"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
    return names


def value_attributes() -> set[str]:
    names = {n for n in public(torch.Tensor) if n not in TENSOR_EXCLUDE}
    names |= {n for n in public(nn.Module) if n not in MODULE_EXCLUDE}
    for cls in (
        *BUILTIN_TYPES,
        torch.Size,
        torch.dtype,
        torch.device,
        torch.finfo,
        torch.iinfo,
        BaseException,
    ):
        names.update(public(cls))
    names.update(n for t in vars(torch.return_types).values() if isinstance(t, type) for n in public(t))
    return (names | layer_attributes()) - {"format_map"}


def torch_names() -> set[str]:
    aten = {n for n in public(torch._C._VariableFunctions)}
    return (
        aten
        | set(torch.functional.__all__)
        | TORCH_EXTRA
        | {"nn", "fft", "linalg", "special", "cuda"}
        | DTYPES
    ) - TORCH_EXCLUDE


def program_modules() -> dict[str, set[str]]:
    return {
        "torch": torch_names(),
        "torch.nn": nn_layers()
        | {
            "Module",
            "Sequential",
            "ModuleList",
            "ModuleDict",
            "ParameterList",
            "ParameterDict",
            "functional",
            "init",
        },
        "torch.nn.functional": functions(F, F_EXCLUDE),
        "torch.nn.init": functions(nn.init),
        "torch.fft": functions(torch.fft),
        "torch.linalg": functions(torch.linalg),
        "torch.special": functions(torch.special),
        "torch.cuda": set(CUDA_NAMES),
        "math": set(public(math)),
        "typing": {n for n in TYPING_NAMES if hasattr(typing, n)},
    }


def numpy_names() -> dict[str, set[str]]:
    top = set()
    for name in public(numpy):
        value = getattr(numpy, name)
        module = getattr(value, "__module__", "") or ""
        if name in NUMPY_EXCLUDE or isinstance(value, types.ModuleType) or "npyio" in module:
            continue
        constant = isinstance(value, (numpy.ufunc, float, int)) or value is None
        scalar_type = isinstance(value, type) and (
            issubclass(value, numpy.generic) or value in (numpy.ndarray, numpy.dtype)
        )
        function = callable(value) and not isinstance(value, type) and module.startswith("numpy")
        if constant or scalar_type or function:
            top.add(name)
    top |= {"random", "linalg", "fft"}
    return {
        "numpy": top,
        "numpy.random": functions(numpy.random, {"bit_generator"}) | {"Generator", "RandomState"},
        "numpy.linalg": functions(numpy.linalg),
        "numpy.fft": functions(numpy.fft),
    }


def repository_modules() -> dict[str, set[str]]:
    import itertools
    import operator

    modules = {key: set(value) for key, value in REPOSITORY_MODULES.items()}
    modules["torch.nn.modules"] = nn_layers()
    modules["torch.distributions"] = {
        n
        for n in public(torch.distributions)
        if not isinstance(getattr(torch.distributions, n), types.ModuleType)
    }
    modules["itertools"] = set(public(itertools))
    modules["operator"] = set(public(operator)) - OPERATOR_EXCLUDE
    modules["typing_extensions"] = set(TYPING_NAMES)
    modules.update(numpy_names())
    return modules


# --- what accepted programs use ----------------------------------------------------------------------------------
def program_sources(samples: int) -> list[str]:
    sys.path.insert(0, str(REPO))
    from synth_modules.backends.builtin import BuiltinBackend
    from synth_modules.config import GeneratorConfig
    from synth_modules.sampling import UniformSampler
    from synth_modules.types import GenerationRequest

    config = GeneratorConfig(seed=7)
    backend, sampler = BuiltinBackend(config), UniformSampler(config)
    sources = []
    for index in range(samples):
        request = GenerationRequest(sample=sampler.sample(index), entry_point="")
        try:
            sources.append(asyncio.run(backend.generate(request)).source)
        except Exception:  # a composer failure yields no program, so nothing to allow
            continue
    for folder in PROGRAM_SOURCES:
        for path in sorted((REPO / folder).glob("*.py")):
            text = path.read_text()
            if "# expect:" not in text or "# expect: ok" in text:
                sources.append(text)
    return sources


ALIASES = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "math": "math"}


def used_chains(sources: list[str]) -> set[str]:
    """Dotted module paths (`torch.nn.functional.relu`) that the sources read."""
    found = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute):
                attrs, root = [], node
                while isinstance(root, ast.Attribute):
                    attrs.append(root.attr)
                    root = root.value
                if isinstance(root, ast.Name) and root.id in ALIASES:
                    found.add(".".join([ALIASES[root.id], *reversed(attrs)]))
    return found


def uncovered(chains: set[str], modules: dict[str, set[str]]) -> list[str]:
    missing = []
    for chain in sorted(chains):
        parts = chain.split(".")
        path = parts[0]
        for part in parts[1:]:
            if path not in modules:
                break  # past the last module: value attributes, checked by the program's own rules
            if part not in modules[path]:
                missing.append(chain)
                break
            path = f"{path}.{part}"
    return missing


def build(samples: int) -> dict:
    program = program_modules()
    missing = uncovered(used_chains(program_sources(samples)), program)
    if missing:
        raise SystemExit(f"accepted programs use names the allow-list would refuse: {missing}")
    return {
        "about": "Static checks allow-list; regenerate with scripts/derive_static_allowlist.py and review the diff.",
        "torch_version": torch.__version__.split("+")[0],
        "policies": {
            "program": {
                "imports": ["torch", "torch.nn", "torch.nn.functional", "math", "typing", "__future__"],
                "star_imports": ["math", "__future__"],
                "dunder_methods": ["__init__", "__repr__", "__str__", "__len__", "__getitem__", "__iter__"],
                "modules": {k: sorted(v) for k, v in sorted(program.items())},
                "value_attributes": sorted(value_attributes()),
            },
            "repository": {
                "extends": "program",
                "imports": sorted(
                    {*repository_modules(), *program, "__future__"} - {"torch.cuda"} | {"torch.cuda.amp"}
                ),
                "star_imports": ["math", "__future__"],
                "dunder_methods": [
                    "__post_init__",
                    "__setstate__",
                    "__contains__",
                    "__call__",
                    "__getattr__",
                ],
                "modules": {k: sorted(v) for k, v in sorted(repository_modules().items())},
                "value_attributes": None,
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=400, help="composer programs to derive from")
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args()
    text = json.dumps(build(args.samples), indent=1) + "\n"
    if args.check:
        same = OUTPUT.read_text() == text
        print(
            "static_allowlist.json is up to date" if same else "static_allowlist.json differs: regenerate it"
        )
        raise SystemExit(0 if same else 1)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
