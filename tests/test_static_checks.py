"""Static safety checks: every escape route is refused, real model code is not."""

from __future__ import annotations

import asyncio
import math
import types
import typing

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sandbox_corpus import PROGRAM_HEADER, STATIC_CATEGORIES, load_corpus, program

from synth_modules.sandbox.static_checks import check_static


@pytest.mark.parametrize("item", load_corpus(), ids=lambda p: p.name)
def test_corpus_static_verdicts(item):
    verdict = check_static(item.source)
    if item.expect in STATIC_CATEGORIES:
        assert not verdict.ok
        assert verdict.category == item.expect, verdict.message
        assert verdict.stage == "static"
    else:
        assert verdict.ok, verdict.message


ATTACKS = {
    "torch_os": "torch.os.system('id')",
    "torch_sys": "torch.sys.modules",
    "functional_numpy": "F.np.load('x.npy')",
    "typing_sys": "import typing\ntyping.sys.exit()",
    "typing_types": "import typing\ntyping.types.FunctionType",
    "torch_builtins": "torch.builtins.open",
    "torch_importlib": "torch.importlib.import_module('os')",
    "subclasses": "().__class__.__base__.__subclasses__()",
    "globals_dunder": "(lambda: 0).__globals__",
    "builtins_name": "__builtins__['open']",
    "import_dunder": "__import__('os')",
    "getattr_computed": "name = 'Lin' + 'ear'\ngetattr(nn, name)",
    "setattr": "setattr(F, 'relu', None)",
    "eval": "eval('1 + 1')",
    "exec": "exec('x = 1')",
    "compile": "compile('1', 'f', 'eval')",
    "open": "open('/etc/passwd').read()",
    "globals": "globals()['torch']",
    "vars": "vars(torch)",
    "breakpoint": "breakpoint()",
    "format_string": "'{0.__class__.__init__.__globals__}'.format(1)",
    "frame_walk": "g = (i for i in [1])\nf = g.gi_frame.f_back.f_globals",
    "private_torch": "torch._C._get_tracing_state()",
    "dynamo": "torch._dynamo.reset()",
    "ops": "torch.ops.aten.add",
    "classes": "torch.classes.load_library('x.so')",
    "library": "torch.library.Library('x', 'DEF')",
    "load": "torch.load('weights.pt')",
    "save": "torch.save({}, 'weights.pt')",
    "hub": "torch.hub.load('owner/repo', 'model')",
    "from_file": "torch.from_file('/etc/passwd', size=10)",
    "cpp_extension": "torch.utils.cpp_extension.load_inline('x', '')",
    "utils_data": "torch.utils.data.DataLoader([], num_workers=4)",
    "jit_load": "torch.jit.load('m.pt')",
    "jit_alias_load": "j = torch.jit\nm = j.load('m.pt')",
    "storage_from_file": "torch.UntypedStorage.from_file('/etc/passwd')",
    "share_memory": "torch.ones(3).share_memory_()",
    "multiprocessing": "torch.multiprocessing.spawn(print)",
    "module_as_value": "t = torch\nt.ops",
    "module_as_argument": "def f(m):\n    return m\nf(torch)",
    "monkeypatch_store": "torch.relu = lambda x: x",
    "monkeypatch_class": "nn.Linear.forward = lambda self, x: x",
    "monkeypatch_del": "del F.relu",
    "monkeypatch_alias": "lin = nn.Linear\nlin.forward = None",
    "from_torch_import_load": "from torch import load",
    "from_torch_import_private": "from torch import _C",
    "from_torch_import_os": "from torch import os",
    "import_os": "import os",
    "import_sys": "import sys",
    "import_subprocess": "import subprocess",
    "import_socket": "import socket",
    "import_ctypes": "import ctypes",
    "import_pickle": "import pickle",
    "import_builtins": "import builtins",
    "import_importlib": "from importlib import import_module",
    "import_torch_hub": "import torch.hub",
    "import_torch_private": "import torch._dynamo",
    "exit_builtin": "exit(0)",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attacks_are_unsafe(name):
    verdict = check_static(program(ATTACKS[name]))
    assert not verdict.ok
    assert verdict.category == "unsafe_code", verdict.message
    assert verdict.message.startswith("line ")


def _reexported_modules() -> list[str]:
    """Every non-torch module reachable as an attribute of an allowed import (torch.os, F.np, typing.sys)."""
    found = []
    for alias, module in (("torch", torch), ("nn", nn), ("F", F), ("math", math), ("typing", typing)):
        for name, value in vars(module).items():
            # math itself is on the allow-list
            if (
                isinstance(value, types.ModuleType)
                and not value.__name__.startswith("torch")
                and name != "math"
            ):
                found.append(f"{alias}.{name}")
    return found


def test_every_reexported_module_is_unsafe():
    chains = _reexported_modules()
    assert "torch.os" in chains and "F.np" in chains
    for chain in chains:
        verdict = check_static(program(f"import typing\nimport math\nx = {chain}"))
        assert verdict.category == "unsafe_code", chain


ALLOWED = {
    "aliases": "from torch import nn as tnn\nfrom torch.nn import functional as fn\nimport math as m",
    "typing": "from typing import List, Optional, Tuple\nimport typing\nx: Optional[int] = None",
    "math_star": "from math import *",
    "future": "from __future__ import annotations",
    "init": "def make(c):\n    layer = nn.Linear(c, c)\n    nn.init.xavier_uniform_(layer.weight)\n    return layer",
    "private_self": "class Helper(nn.Module):\n    def _reset(self):\n        self._state = None",
    "self_ops": "class Helper:\n    def __init__(self):\n        self.ops = []\n\n    def run(self):\n        return [op for op in self.ops]",
    "literal_getattr": "def f(m):\n    return getattr(m, 'weight', None)\nact = getattr(nn, 'ReLU')",
    "cuda_branch": "def device():\n    return 'cuda' if torch.cuda.is_available() else 'cpu'",
    "buffer_read": "class B(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.register_buffer('mask', torch.ones(3))\n\n    def forward(self, x):\n        return x * self.mask",
    "plain_format": "msg = '{} of {:>4d} {name}'.format(1, 2, name='x')\nf = f'{msg!r:>10}'",
    "local_object_store": "def make():\n    layer = nn.Linear(3, 3)\n    layer.weight.requires_grad = False\n    return layer",
    "main_guard": 'if __name__ == "__main__":\n    print("hi")',
    "super_init": "class Block(nn.Module):\n    def __init__(self):\n        nn.Module.__init__(self)",
    "functional_chain": "y = F.relu(torch.randn(2)).sum().item()",
    "type_annotations": "def f(x: torch.Tensor) -> torch.Tensor:\n    return x",
    "isinstance": "def f(x):\n    return isinstance(x, torch.Tensor)",
    "tensor_select": "def f(x):\n    return x.select(0, 1)",
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_real_model_code_is_allowed(name):
    verdict = check_static(program(ALLOWED[name]), entry_point="Model")
    assert verdict.ok, verdict.message


def test_import_allow_list_and_repository_policy():
    numpy_program = program("import numpy as np\nx = np.zeros(3)")
    assert check_static(numpy_program).category == "import_error"
    assert check_static(numpy_program, policy="repository").ok
    assert check_static(program("import numpy.linalg"), policy="repository").ok
    # the wider policy is still an allow-list: numpy's loaders and dangerous modules stay refused
    assert check_static(program("import numpy as np\nnp.load('x')"), policy="repository").category == (
        "unsafe_code"
    )
    assert check_static(program("import os"), policy="repository").category == "unsafe_code"
    assert check_static(program("import einops")).category == "import_error"
    assert check_static(program("from . import sibling")).category == "import_error"
    assert check_static(program("import torch.nn.init")).category == "import_error"


def test_category_precedence_unsafe_over_import_over_structure():
    # no Model, unknown import and an escape: unsafe wins
    source = PROGRAM_HEADER + "import numpy\nx = torch.os\n"
    assert check_static(source).category == "unsafe_code"
    assert check_static(PROGRAM_HEADER + "import numpy\n").category == "import_error"
    assert check_static(PROGRAM_HEADER).category == "structure_error"


def test_structure_and_entry_point():
    two = program("class Helper(nn.Module):\n    def forward(self, x):\n        return x")
    assert check_static(two).category == "structure_error"
    assert check_static(two, entry_point="Model").ok  # a named entry point allows helper modules
    missing = check_static(two, entry_point="Other")
    assert missing.category == "structure_error" and "Other" in missing.message
    no_init_inputs = (
        PROGRAM_HEADER + "class Model(nn.Module):\n    pass\n\ndef get_inputs():\n    return []\n"
    )
    verdict = check_static(no_init_inputs)
    assert verdict.category == "structure_error" and "get_init_inputs" in verdict.message
    syntax = check_static("def broken(:\n")
    assert syntax.category == "syntax_error" and "line 1" in syntax.message


def test_composer_programs_pass_static_checks():
    """The built-in composer's output is the bulk of real data: no false positives on it."""
    from synth_modules.backends.builtin import BuiltinBackend
    from synth_modules.config import GeneratorConfig
    from synth_modules.sampling import UniformSampler
    from synth_modules.types import GenerationRequest

    config = GeneratorConfig(seed=7)
    backend = BuiltinBackend(config)
    sampler = UniformSampler(config)

    async def compose(index: int):
        sample = sampler.sample(index)
        return await backend.generate(GenerationRequest(sample=sample, entry_point=""))

    checked = 0
    for index in range(300):
        try:
            generation = asyncio.run(compose(index))
        except Exception:  # a composer failure is the composer's test's business, not this one's
            continue
        verdict = check_static(generation.source, generation.entry_point)
        assert verdict.ok, (generation.entry_point, verdict.message)
        checked += 1
    assert checked >= 280
