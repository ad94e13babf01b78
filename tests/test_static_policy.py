"""The static checks as an allow-list: policies from reviewed data, one checker, string-eval paths refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sandbox_corpus import program

from synth_modules.sandbox.static_checks import check_static
from synth_modules.sandbox.static_policy import policy_named

REPO = Path(__file__).resolve().parent.parent


ATTACKS = {
    # code hidden in strings that something evaluates
    "string_annotation_code": "def f(x: 'torch.os.system(\"id\")'):\n    return x",
    "string_annotation_nested": "from typing import Optional\ndef f(x: Optional['open(\"/etc/passwd\")']):\n    return x",
    "type_comment_code": "def f(x):\n    # type: (torch.os.getcwd()) -> None\n    return x",
    "type_comment_unreadable": "def f(x):\n    # type: (((\n    return x",
    "get_type_hints": "import typing\nh = typing.get_type_hints(Model)",
    "from_typing_get_type_hints": "from typing import get_type_hints",
    "star_typing": "from typing import *",
    "forward_ref": "import typing\nr = typing.ForwardRef('x')",
    "torch_jit_script": "@torch.jit.script\ndef f(x):\n    return x * 2",
    "torch_jit_trace": "t = torch.jit.trace",
    "torch_compile": "f = torch.compile(torch.relu)",
    "torch_fx": "g = torch.fx.symbolic_trace",
    "jiterator": "k = torch.cuda.jiterator._create_jit_fn('code')",
    "sympy": "import sympy",
    # modules as values
    "module_default_arg": "def f(x, m=torch):\n    return m.ops",
    "module_returned": "def f():\n    return torch",
    "module_in_tuple": "mods = (torch, F)",
    "submodule_value": "fn = torch.nn.functional",
    "submodule_argument": "def f(m):\n    return m\nf(nn.functional)",
    "module_rebinding": "torch = None",
    "module_hasattr": "ok = hasattr(torch, 'load')",
    # attribute assignment on what may be a module or class
    "store_on_parameter": "def patch(cls):\n    cls.forward = None",
    "store_on_loop_variable": "for c in (nn.Linear, nn.Conv2d):\n    c.forward = None",
    "store_on_type_call": "type(torch.ones(1)).abs = None",
    "store_on_type_result": "t = type(torch.ones(1))\nt.abs = None",
    "store_on_super": "class B(nn.Module):\n    def f(self):\n        super().eval = None",
    "store_on_program_class": "class B(nn.Module):\n    pass\nB.forward = None",
    "store_on_lambda_self": "f = lambda self: setattr(self, 'x', 1)",
    "augmented_store": "torch.pi += 1",
    "delete_attribute": "del nn.Module.eval",
    # format templates
    "format_attribute": "s = '{0.real}'.format(torch.ones(1))",
    "format_index": "s = '{0[0]}'.format([torch])",
    "format_nested_spec": "s = '{0:{1.real}}'.format(1, torch.ones(1))",
    "format_computed": "s = ('{' + '}').format(1)",
    "format_unbound": "s = str.format('{0}', 1)",
    "format_map_attribute": "s = '{x.real}'.format_map({'x': 1})",
    "fstring_dunder": "s = f'{torch.ones(1).__class__}'",
    # computed attribute names and other reflection
    "getattr_computed": "name = 'load'\nf = getattr(torch, name)",
    "getattr_as_value": "g = getattr\nf = g(torch, 'lo' + 'ad')",
    "getattr_literal_banned": "f = getattr(torch, 'load')",
    "getattr_literal_dunder": "f = getattr(torch.ones(1), '__class__')",
    "dir_builtin": "names = dir(torch)",
    "type_three_args": "Evil = type('Evil', (), {})",
    "metaclass": "class B(nn.Module, metaclass=type):\n    pass",
    "torch_function_override": "class T(torch.Tensor):\n    def __torch_function__(self, *a):\n        return 0",
    "module_getattr": "def __getattr__(name):\n    return name",
    "dunder_store": "__builtins__ = {}",
    # tensor and module attributes off the list
    "share_memory": "t = torch.ones(1).share_memory_()",
    "untyped_storage": "s = torch.ones(1).untyped_storage()",
    "module_compile": "class B(nn.Module):\n    def f(self):\n        return self.compile()",
    "private_value_attribute": "s = torch.ones(1)._version",
    "unknown_value_attribute": "s = torch.ones(1).frobnicate()",
    "cuda_branch": "if torch.cuda.is_available():\n    x = torch.os.environ",
    "private_class_member": "s = torch.Tensor._make_subclass",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attacks_are_unsafe(name):
    verdict = check_static(program(ATTACKS[name]))
    assert not verdict.ok, name
    assert verdict.category == "unsafe_code", verdict.message
    assert verdict.message.startswith("line "), verdict.message


ALLOWED = {
    "literal_getattr": "def f(m):\n    return getattr(m, 'weight', None)",
    "cuda_branch": "def device():\n    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
    "plain_fstring": "n = 3\ns = f'{n!r:>{n}} {n:.2f}'",
    "nested_self_store": (
        "class B(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.layers = nn.ModuleList([nn.Linear(2, 2)])\n"
        "        self.layers[0].bias = None\n"
        "        def helper():\n            self.extra = 1\n        helper()"
    ),
    "string_annotation_type": "def f(x: 'torch.Tensor') -> 'Model':\n    return x",
    "type_comment_type": "def f(x):\n    # type: (torch.Tensor) -> torch.Tensor\n    return x",
    "type_ignore": "y = 1  # type: ignore[assignment]",
    "return_types": "def f(x):\n    return torch.max(x, dim=0).values + x.min(0).indices",
    "layer_attributes": "l = nn.Conv2d(3, 4, 3)\nk = l.kernel_size, l.out_channels, l.weight.shape, l.padding_mode",
    "rnn_weights": "g = nn.GRU(4, 4)\nw = g.weight_ih_l0",
    "math_star": "from math import *\ny = sqrt(pi)",
    "tensor_class_method": "y = torch.Tensor.add(torch.ones(1), 1)",
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_model_code_is_allowed(name):
    verdict = check_static(program(ALLOWED[name]), entry_point="Model")
    assert verdict.ok, verdict.message


REPOSITORY_ALLOWED = {
    "einops": "from einops import rearrange\nfrom einops.layers.torch import Rearrange\ny = Rearrange('b c -> c b')",
    "numpy": "import numpy as np\nscale = np.sqrt(np.float32(2.0)) * np.pi",
    "functools": "import functools\nact = functools.partial(F.gelu, approximate='tanh')",
    "jit_markers": "def f(x):\n    if not torch.jit.is_scripting():\n        return x\n    return x",
    "checkpoint": "from torch.utils.checkpoint import checkpoint\ndef f(fn, x):\n    return checkpoint(fn, x)",
    "config_attributes": "class Cfg:\n    pass\ndef f(config):\n    return config.bucket_width * config.depth_scale",
    "missing_dependency_stub": (
        "class _MissingDependency:\n    def __init__(self, name):\n        self._name = name\n"
        "    def __getattr__(self, attr):\n        raise ImportError(self._name)"
    ),
}
REPOSITORY_ATTACKS = {
    "jit_script": "@torch.jit.script\ndef f(x):\n    return x",
    "numpy_load": "import numpy as np\na = np.load('x.npy')",
    "numpy_ctypeslib": "import numpy as np\nc = np.ctypeslib",
    "attrgetter": "import operator\ng = operator.attrgetter('x')",
    "string_template": "import string\nt = string.Formatter()",
    "value_dunder": "def f(config):\n    return config.__class__",
    "module_as_value": "import numpy as np\ndef f(m=np):\n    return m",
}


@pytest.mark.parametrize("name", sorted(REPOSITORY_ALLOWED))
def test_repository_policy_allows_real_code(name):
    source = program(REPOSITORY_ALLOWED[name])
    assert check_static(source, entry_point="Model", policy="repository").ok, name
    if name != "config_attributes":  # a value's attributes are free only for repository code
        assert not check_static(source, entry_point="Model").ok, name


def test_repository_policy_reads_config_attributes_that_the_program_policy_refuses():
    source = program(REPOSITORY_ALLOWED["config_attributes"])
    verdict = check_static(source, entry_point="Model")
    assert verdict.category == "unsafe_code" and "bucket_width" in verdict.message


@pytest.mark.parametrize("name", sorted(REPOSITORY_ATTACKS))
def test_repository_policy_is_still_an_allow_list(name):
    verdict = check_static(program(REPOSITORY_ATTACKS[name]), policy="repository")
    assert verdict.category == "unsafe_code", (name, verdict.message)


def test_policy_data_holds_no_escape_hatch():
    program_policy, repository = policy_named("program"), policy_named("repository")
    torch_names = program_policy.modules["torch"]
    for name in ("load", "save", "from_file", "compile", "jit", "ops", "classes", "library", "hub", "utils",
                 "manual_seed", "parse_type_comment", "fx", "export", "backends", "multiprocessing"):  # fmt: skip
        assert name not in torch_names, name
    assert not any(n.startswith("_") for names in repository.modules.values() for n in names)
    values = program_policy.value_attributes
    assert values is not None and "share_memory_" not in values and "compile" not in values
    assert "relu" in values and "shape" in values and "append" in values
    assert "script" not in repository.modules["torch.jit"]
    assert not {"load", "save", "fromfile", "memmap"} & repository.modules["numpy"]
    assert repository.value_attributes is None
    assert program_policy.imports == {
        "torch",
        "torch.nn",
        "torch.nn.functional",
        "math",
        "typing",
        "__future__",
    }
    with pytest.raises(ValueError, match="program"):
        policy_named("nonsense")


def test_github_index_uses_the_repository_policy():
    from github_index.generate import STATIC_POLICY, static_verdict

    assert STATIC_POLICY == "repository"
    ok, category, _ = static_verdict(program("import numpy as np\nx = np.zeros(3)"), "Model")
    assert ok, category
    ok, category, _ = static_verdict(program("import numpy as np\nx = np.load('w')"), "Model")
    assert not ok and category == "unsafe_code"


def test_committed_allow_list_matches_its_derivation():
    """The data file is what the derivation script writes for this torch (regenerate it after an upgrade)."""
    data = json.loads((REPO / "synth_modules" / "data" / "static_allowlist.json").read_text())
    if data["torch_version"] != torch.__version__.split("+")[0]:
        pytest.skip(f"allow-list derived on torch {data['torch_version']}, this is {torch.__version__}")
    result = subprocess.run(
        [sys.executable, "scripts/derive_static_allowlist.py", "--check", "--samples", "400"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
