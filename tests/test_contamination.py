"""KernelBench contamination filter: hand-written lookalikes of level-1 and level-2 problems are caught however
they are spelled (renamed, reordered, functional / module / method style, extra reshapes and dropout, Swish as
x * sigmoid(x), Gemm as nn.Linear or torch.matmul), and programs that merely share some ops pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from synth_modules.analysis.kernelbench import load_problems
from synth_modules.analysis.opseq import extract_op_sequence, normalize_op, normalized_op_sequence
from synth_modules.config import GeneratorConfig
from synth_modules.gates import build_gates
from synth_modules.gates.base import GateInput
from synth_modules.gates.contamination import ContaminationGate, ContaminationMatcher
from synth_modules.gates.dedup import DedupGate
from synth_modules.types import Verdict

REPO = Path(__file__).resolve().parent.parent
HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"


def program(init: str, forward: str, name: str = "Model", extra: str = "") -> str:
    """A program file with the given __init__ body and forward body (dedented)."""
    init_body = textwrap.indent(textwrap.dedent(init).strip() or "pass", " " * 8)
    forward_body = textwrap.indent(textwrap.dedent(forward).strip(), " " * 8)
    return (
        HEADER
        + f"class {name}(nn.Module):\n"
        + "    def __init__(self):\n        super().__init__()\n"
        + init_body
        + "\n\n    def forward(self, x):\n"
        + forward_body
        + "\n"
        + textwrap.indent(textwrap.dedent(extra), " " * 4)
        + "\n\ndef get_inputs():\n    return [torch.randn(2, 8, 16, 16)]\n\n\n"
        + "def get_init_inputs():\n    return [[], {}]\n"
    )


def check(source: str, gate: ContaminationGate | None = None, entry_point: str = "Model"):
    gate = gate or ContaminationGate({"l1", "l2"}, "reordered")
    item = GateInput(
        id="t", entry_point=entry_point, source=source, final_pattern=[], verdict=Verdict(True, "done")
    )
    return gate.check(item)


@pytest.fixture(scope="module")
def gate() -> ContaminationGate:
    return ContaminationGate({"l1", "l2"}, "reordered")


# ----- normalization --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["nn.ReLU", "torch.relu", "F.relu", "Tensor.relu_", "ReLU", "relu"], "relu"),
        (["Gemm", "Matmul", "BMM", "nn.Linear", "torch.matmul", "F.linear", "matmul", "Tensor.mm"], "linear"),
        (["BiasAdd", "Sum", "ResidualAdd", "add", "torch.add", "Tensor.add_"], "add"),
        (["Scaling", "Scale", "Multiply", "mul", "torch.multiply", "Tensor.mul"], "mul"),
        (["Swish", "F.silu", "nn.SiLU", "silu"], "swish"),
        (
            ["GlobalAvgPool", "nn.AdaptiveAvgPool3d", "F.adaptive_avg_pool2d", "torch.mean", "Tensor.mean"],
            "mean",
        ),
        (["Conv2D", "Conv2d", "nn.Conv2d", "F.conv2d"], "conv2d"),
        (["ConvTranspose3d", "F.conv_transpose3d"], "convtranspose3d"),
        (["nn.Hardtanh", "F.hardtanh", "torch.clamp", "Tensor.clip", "Clamp"], "clamp"),
        (["nn.BatchNorm2d", "BatchNorm1d", "F.batch_norm"], "batchnorm"),
        (["LogSumExp", "logsumexp", "torch.logsumexp"], "logsumexp"),
        (["HardSwish", "nn.Hardswish", "F.hardswish"], "hardswish"),
        (["LeakyReLU", "F.leaky_relu"], "leakyrelu"),
    ],
)
def test_spellings_collapse(names: list[str], expected: str):
    assert {normalize_op(name) for name in names} == {expected}


@pytest.mark.parametrize(
    "name",
    [
        "Tensor.view",
        "torch.flatten",
        "nn.Flatten",
        "nn.Dropout",
        "F.dropout",
        "Tensor.reshape",
        "Tensor.unsqueeze",
        "Tensor.squeeze",
        "Tensor.permute",
        "Tensor.contiguous",
        "Tensor.clone",
        "Tensor.detach",
        "nn.Identity",
        "torch.tensor",
    ],
)
def test_shape_only_ops_vanish(name: str):
    assert normalize_op(name) is None


def test_distinct_ops_stay_distinct():
    assert normalize_op("torch.sum") == "sum" != normalize_op("Sum")
    assert normalize_op("nn.Conv2d") != normalize_op("nn.Conv3d")
    assert normalize_op("nn.MaxPool2d") != normalize_op("torch.max")
    assert normalize_op("nn.Sigmoid") != normalize_op("nn.SiLU")


# ----- op sequences from code -----------------------------------------------------------------------------------
def test_sequence_is_read_from_code_through_sequential_modulelist_helpers_and_submodules():
    source = HEADER + textwrap.dedent(
        """
        def swish(t):
            return t * torch.sigmoid(t)


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 3, padding=1)
                self.norm = nn.GroupNorm(2, c)

            def forward(self, x):
                return F.relu(self.norm(self.conv(x)))


        class Net(nn.Module):
            def __init__(self, c=8):
                super().__init__()
                layers = [nn.Conv2d(3, c, 1)]
                layers.append(nn.Tanh())
                self.stem = nn.Sequential(*layers, nn.Dropout(0.1))
                self.blocks = nn.ModuleList([Block(c), nn.MaxPool2d(2)])
                self.scale = 0.5
                self.bias = nn.Parameter(torch.zeros(c, 1, 1))

            def _head(self, x):
                x = x.mean(dim=(2, 3), keepdim=True) * self.scale
                return swish(x + self.bias)

            def forward(self, x):
                x = self.stem(x)
                for block in self.blocks:
                    x = block(x)
                x = x.view(x.size(0), -1).view(x.size(0), -1, 1, 1)
                return self._head(x).flatten(1)
        """
    )
    assert extract_op_sequence(source, "Net") == [
        "nn.Conv2d", "nn.Tanh", "nn.Dropout", "nn.Conv2d", "nn.GroupNorm", "F.relu", "nn.MaxPool2d",
        "Tensor.view", "Tensor.view", "Tensor.mean", "mul", "add", "F.silu", "Tensor.flatten",
    ]  # fmt: skip
    assert normalized_op_sequence(source, "Net") == [
        "conv2d", "tanh", "conv2d", "groupnorm", "relu", "maxpool2d", "mean", "mul", "add", "swish",
    ]  # fmt: skip


def test_arithmetic_on_python_scalars_is_not_an_op():
    source = program(
        "self.hidden = 4 * 2\nself.fc = nn.Linear(8, 8)",
        "n = x.size(0) * 2 + self.hidden\nreturn self.fc(x) - n",
    )
    assert normalized_op_sequence(source) == ["linear", "sub"]


# ----- lookalikes that must be caught ---------------------------------------------------------------------------
L2_LOOKALIKES = {
    "12_Gemm_Multiply_LeakyReLU.py": [
        # renamed class, module style
        program(
            "self.gemm = nn.Linear(8, 8)\nself.multiplier = 2.0\nself.leaky_relu = nn.LeakyReLU(0.1)",
            "x = self.gemm(x)\nx = x * self.multiplier\nreturn self.leaky_relu(x)",
            name="TotallyOriginalModel",
        ),
        # functional style, Gemm as torch.matmul, extra reshapes and dropout
        program(
            "self.weight = nn.Parameter(torch.randn(8, 8))",
            """
            x = x.view(x.size(0), -1)
            x = torch.matmul(x, self.weight.t())
            x = F.dropout(x, p=0.0, training=self.training)
            x = torch.mul(x, 2.0).flatten(1)
            return F.leaky_relu(x, negative_slope=0.01)
            """,
        ),
        # method style, Gemm as the @ operator, the activation in a helper method
        program(
            "self.w = nn.Parameter(torch.randn(8, 8))",
            "y = (x @ self.w).mul(3.0)\nreturn self.extra_relu(y.unsqueeze(1).squeeze(1))",
            extra="""
            def extra_relu(self, t):
                return F.leaky_relu(t)
            """,
        ),
    ],
    "1_Conv2D_ReLU_BiasAdd.py": [
        # reordered: bias added before the ReLU
        program(
            "self.conv = nn.Conv2d(3, 8, 3)\nself.bias = nn.Parameter(torch.zeros(8, 1, 1))",
            "x = self.conv(x)\nx = x + self.bias\nreturn torch.relu(x)",
        ),
        # inside nn.Sequential, in-place method ReLU, bias via torch.add
        program(
            "self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Identity())\nself.b = nn.Parameter(torch.zeros(8, 1, 1))",
            "return torch.add(self.body(x).relu_(), self.b)",
        ),
    ],
    "59_Matmul_Swish_Scaling.py": [
        program(
            "self.fc = nn.Linear(8, 8)\nself.scaling_factor = 2.0",
            "x = self.fc(x)\nx = x * torch.sigmoid(x)\nreturn x * self.scaling_factor",
        ),
        program("self.fc = nn.Linear(8, 8)\nself.act = nn.SiLU()", "return self.act(self.fc(x)) * 2.0"),
        program("self.fc = nn.Linear(8, 8)", "h = self.fc(x)\nreturn 0.5 * (h * h.sigmoid())"),
    ],
    "4_Conv2d_Mish_Mish.py": [
        program(
            "self.conv = nn.Conv2d(3, 8, 3)",
            "x = self.conv(x)\nx = self._mish(x)\nreturn nn.Mish()(x)",
            extra="""
            def _mish(self, t):
                return t * torch.tanh(F.softplus(t))
            """,
        ),
    ],
    "52_Conv2d_Activation_BatchNorm.py": [
        program(
            "self.conv = nn.Conv2d(3, 8, 3)\nself.bn = nn.BatchNorm2d(8)",
            "return self.bn(F.mish(self.conv(x)))",
        ),
    ],
    "57_Conv2d_ReLU_HardSwish.py": [
        program("self.conv = nn.Conv2d(3, 8, 3)", "return F.hardswish(F.relu(self.conv(x)))"),
    ],
    "67_Conv2d_GELU_GlobalAvgPool.py": [
        program(
            "self.conv = nn.Conv2d(3, 8, 3)\nself.pool = nn.AdaptiveAvgPool2d(1)",
            "return torch.flatten(self.pool(F.gelu(self.conv(x))), 1)",
        ),
        program("self.conv = nn.Conv2d(3, 8, 3)", "return F.gelu(self.conv(x)).mean(dim=[2, 3])"),
    ],
    "30_Gemm_GroupNorm_Hardtanh.py": [
        program(
            "self.net = nn.Sequential(nn.Linear(8, 16), nn.GroupNorm(4, 16))",
            "return torch.clamp(self.net(x), min=-2.0, max=2.0)",
        ),
    ],
    "66_Matmul_Dropout_Mean_Softmax.py": [  # only in the original (v0) release
        program(
            "self.matmul = nn.Linear(8, 8)\nself.dropout = nn.Dropout(0.2)",
            "x = self.dropout(self.matmul(x))\nx = torch.mean(x, dim=1, keepdim=True)\nreturn torch.softmax(x, dim=1)",
        ),
    ],
}

L1_LOOKALIKES = {
    "19_ReLU.py": [
        program("", "return torch.relu(x)", name="Act"),
        program(
            "self.a = nn.ReLU()\nself.b = nn.ReLU(inplace=True)",
            "return self.b(self.a(x.view(-1)).view(2, -1))",
        ),
    ],
    "25_Swish.py": [program("", "return x * torch.sigmoid(x)")],
    "23_Softmax.py": [program("", "return F.softmax(x.flatten(1), dim=-1)")],
    "63_conv_standard_2D__square_input__square_kernel.py": [
        program("self.c = nn.Conv2d(3, 8, 3)", "return self.c(x)")
    ],
    "1_Square_matrix_multiplication_.py": [
        program("self.fc = nn.Linear(8, 8)", "return self.fc(x.flatten(1))")
    ],
    "47_Sum_reduction_over_a_dimension.py": [program("", "return torch.sum(x, dim=1, keepdim=True)")],
    "32_HardTanh.py": [program("", "return F.hardtanh(x, -1.0, 1.0)")],
    "88_MinGPTNewGelu.py": [program("", "return F.gelu(x, approximate='tanh')")],
}


def _cases(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(problem, source) for problem, sources in table.items() for source in sources]


@pytest.mark.parametrize(("problem", "source"), _cases(L2_LOOKALIKES) + _cases(L1_LOOKALIKES))
def test_lookalikes_are_caught(gate: ContaminationGate, problem: str, source: str):
    entry = source.split("class ", 1)[1].split("(", 1)[0]
    decision = check(source, gate, entry)
    assert not decision.keep, (problem, normalized_op_sequence(source))
    assert decision.category == "contaminated"
    named = [decision.details["kernelbench"], *decision.details["also"]]
    assert problem in named, (named, decision.details)
    assert decision.details["op_sequence"] == normalized_op_sequence(source)


# Every level-2 problem, generated in two styles from its recorded ops: module style in recorded order and
# functional/method style with extra shape ops in reversed order (the reordered multiset must still match).
_MODULE_STYLE = {
    "linear": "nn.Linear(8, 8)", "relu": "nn.ReLU()", "leakyrelu": "nn.LeakyReLU(0.1)", "gelu": "nn.GELU()",
    "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "softmax": "nn.Softmax(dim=1)", "mish": "nn.Mish()",
    "swish": "nn.SiLU()", "hardswish": "nn.Hardswish()", "clamp": "nn.Hardtanh(-1.0, 1.0)",
    "batchnorm": "nn.BatchNorm2d(8)", "instancenorm": "nn.InstanceNorm2d(8)", "groupnorm": "nn.GroupNorm(2, 8)",
    "layernorm": "nn.LayerNorm(8)", "softplus": "nn.Softplus()", "mean": "nn.AdaptiveAvgPool2d(1)",
}  # fmt: skip
_FUNCTIONAL_STYLE = {
    "linear": "torch.matmul(x, self.w)", "relu": "x.relu()", "leakyrelu": "F.leaky_relu(x, 0.1)",
    "gelu": "F.gelu(x)", "sigmoid": "x.sigmoid()", "tanh": "torch.tanh(x)", "softmax": "x.softmax(dim=1)",
    "mish": "x * torch.tanh(F.softplus(x))", "swish": "x * torch.sigmoid(x)", "hardswish": "F.hardswish(x)",
    "clamp": "x.clamp(-1, 1)", "add": "torch.add(x, self.b)", "sub": "torch.sub(x, 0.5)", "mul": "x.mul(2.0)",
    "div": "torch.div(x, 2.0)", "mean": "x.mean(dim=1, keepdim=True)", "sum": "x.sum(dim=1, keepdim=True)",
    "max": "x.amax(dim=1, keepdim=True)", "min": "x.amin(dim=1, keepdim=True)",
    "logsumexp": "x.logsumexp(dim=1, keepdim=True)", "batchnorm": "F.batch_norm(x, self.rm, self.rv)",
    "instancenorm": "F.instance_norm(x)", "groupnorm": "F.group_norm(x, 2)",
    "layernorm": "F.layer_norm(x, x.shape[-1:])", "softplus": "F.softplus(x)",
}  # fmt: skip
_ARITH = {"add": "x + self.b", "sub": "x - 0.5", "mul": "x * self.scale", "div": "x / 2.0", "sum": "torch.sum(x, 1)",
          "max": "torch.max(x, 1)[0]", "min": "torch.min(x, 1)[0]", "logsumexp": "torch.logsumexp(x, 1)"}  # fmt: skip


def _module_expr(op: str, position: int, init: list[str]) -> str:
    if op in _ARITH:
        return _ARITH[op]
    for prefix, cls in (("convtranspose", "ConvTranspose"), ("conv", "Conv"), ("maxpool", "MaxPool"),
                        ("avgpool", "AvgPool")):  # fmt: skip
        if op.startswith(prefix):
            init.append(f"self.m{position} = nn.{cls}{op[len(prefix):]}(8, 8, 3)" if "conv" in prefix
                        else f"self.m{position} = nn.{cls}{op[len(prefix):]}(2)")  # fmt: skip
            return f"self.m{position}(x)"
    init.append(f"self.m{position} = {_MODULE_STYLE[op]}")
    return f"self.m{position}(x)"


def _functional_expr(op: str) -> str:
    for prefix, fn in (("convtranspose", "conv_transpose"), ("conv", "conv"), ("maxpool", "max_pool"),
                       ("avgpool", "avg_pool")):  # fmt: skip
        if op.startswith(prefix):
            return f"F.{fn}{op[len(prefix) :]}(x, {'self.w' if 'conv' in prefix else '2'})"
    return _FUNCTIONAL_STYLE[op]


def _l2_programs() -> list[tuple[str, str, str]]:
    cases = []
    for problem in load_problems("l2"):
        seq = min(problem.sequences, key=len)  # the most fused variant: the way a program would spell it
        init = [
            "self.b = nn.Parameter(torch.zeros(8))",
            "self.scale = 2.0",
            "self.w = nn.Parameter(torch.randn(8, 8))",
        ]
        lines = [f"x = {_module_expr(op, i, init)}" for i, op in enumerate(seq)]
        cases.append((problem.name, "module", program("\n".join(init), "\n".join(lines) + "\nreturn x")))
        lines = []
        for op in reversed(seq):
            lines += [f"x = {_functional_expr(op)}", "x = F.dropout(x.contiguous().view(x.shape), 0.0)"]
        cases.append((problem.name, "functional-reversed", program(init[0], "\n".join(lines) + "\nreturn x")))
    return cases


@pytest.mark.parametrize(("problem", "style", "source"), _l2_programs(), ids=lambda v: v[:40])
def test_every_level2_problem_is_caught_in_any_style(
    gate: ContaminationGate, problem: str, style: str, source: str
):
    decision = check(source, gate)
    assert not decision.keep, (problem, style, normalized_op_sequence(source))
    assert problem in [decision.details["kernelbench"], *decision.details["also"]]


# ----- programs that merely share ops pass ---------------------------------------------------------------------
PASSING = [
    # Conv2d + ReLU + BiasAdd (problem 1) plus a Tanh: one op away, a near miss
    program(
        "self.conv = nn.Conv2d(3, 8, 3)\nself.bias = nn.Parameter(torch.zeros(8, 1, 1))",
        "return torch.tanh(torch.relu(self.conv(x)) + self.bias)",
    ),
    program(
        "self.fc = nn.Linear(8, 16)\nself.norm = nn.LayerNorm(16)",
        "x = F.gelu(self.norm(self.fc(x)))\nreturn torch.logsumexp(x * torch.sigmoid(x), dim=1)",
    ),
    program(
        "self.conv = nn.Conv3d(3, 8, 3)\nself.pool = nn.MaxPool3d(2)",
        "x = self.pool(F.elu(self.conv(x)))\nreturn torch.cumsum(x, dim=1) - x.mean()",
    ),
    program(
        "self.up = nn.ConvTranspose2d(3, 8, 2)\nself.gn = nn.GroupNorm(2, 8)",
        "x = self.gn(self.up(x))\nx = F.softplus(x) * 0.5\nreturn torch.amin(x, dim=1)",
    ),
    program(
        "self.fc1 = nn.Linear(8, 8)\nself.fc2 = nn.Linear(8, 4)", "return self.fc2(torch.relu(self.fc1(x)))"
    ),
]


@pytest.mark.parametrize("source", PASSING)
def test_programs_sharing_some_ops_pass(gate: ContaminationGate, source: str):
    decision = check(source, gate)
    assert decision.keep, decision.details
    assert decision.details["op_sequence"] == normalized_op_sequence(source)


def test_near_miss_is_kept_and_recorded(gate: ContaminationGate):
    decision = check(PASSING[0], gate)
    assert decision.keep
    near = {m["kernelbench"]: m["match"] for m in decision.details["near_miss"]}
    assert near.get("1_Conv2D_ReLU_BiasAdd.py") == "insert"


# ----- configuration -------------------------------------------------------------------------------------------
REORDERED = L2_LOOKALIKES["1_Conv2D_ReLU_BiasAdd.py"][0]  # conv -> add -> relu
L1_ONLY = L1_LOOKALIKES["19_ReLU.py"][0]
L2_EXACT = L2_LOOKALIKES["12_Gemm_Multiply_LeakyReLU.py"][1]


def test_strictness_exact_lets_reordered_programs_through_as_near_misses():
    exact = ContaminationGate({"l1", "l2"}, "exact")
    decision = check(REORDERED, exact)
    assert decision.keep
    assert "1_Conv2D_ReLU_BiasAdd.py" in [m["kernelbench"] for m in decision.details["near_miss"]]
    assert not check(L2_EXACT, exact).keep
    reordered = check(REORDERED, ContaminationGate({"l2"}, "reordered"))
    assert not reordered.keep and reordered.details["match"] == "reordered"


def test_levels_select_what_is_matched():
    l1_only = ContaminationGate({"l1"})
    l2_only = ContaminationGate({"l2"})
    assert not check(L1_ONLY, l1_only).keep and check(L1_ONLY, l2_only).keep
    assert check(L2_EXACT, l1_only).keep and not check(L2_EXACT, l2_only).keep


@pytest.mark.parametrize(
    ("setting", "strictness", "expected"),
    [
        ("off", "reordered", None),
        ("l1", "exact", ({"l1"}, "exact")),
        ("l1,l2", "reordered", ({"l1", "l2"}, "reordered")),
    ],
)
def test_build_gates_follows_config(setting: str, strictness: str, expected):
    config = GeneratorConfig(
        contamination=setting, contamination_strictness=strictness, dedup=True, dedup_threshold=0.8
    )
    gates = build_gates(config)
    contamination = [g for g in gates if isinstance(g, ContaminationGate)]
    dedup = [g for g in gates if isinstance(g, DedupGate)]
    assert len(dedup) == 1 and dedup[0].threshold == 0.8
    if expected is None:
        assert contamination == []
    else:
        assert len(contamination) == 1
        assert (set(contamination[0].matcher.levels), contamination[0].matcher.strictness) == expected
    assert [g.name for g in gates][-1] == "dedup"  # stateful dedup runs last
    assert not build_gates(GeneratorConfig(contamination="off", dedup=False))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="strictness"):
        ContaminationMatcher({"l2"}, "fuzzy")
    with pytest.raises(ValueError, match="levels"):
        ContaminationMatcher({"l4"})


def test_reference_covers_both_releases():
    l1, l2 = load_problems("l1"), load_problems("l2")
    assert {p.name for p in l1} >= {
        "50_Product_reduction_over_a_dimension.py",
        "97_ScaledDotProductAttention.py",
    }
    assert len({p.name.split("_")[0] for p in l1}) == 100 and len({p.name.split("_")[0] for p in l2}) == 100
    v0_only = [p.name for p in l2 if p.releases == ("v0",)]
    assert "41_Gemm_BatchNorm_GELU_GroupNorm_Mean_ReLU.py" in v0_only
    assert all(p.sequences for p in (*l1, *l2))


def test_reference_data_ships_in_the_wheel(tmp_path: Path):
    """A non-editable install must find the KernelBench data (package-data + importlib.resources)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    (src / "README.md").touch()
    for package in ("synth_modules", "operators", "prompts", "github_index"):
        if (REPO / package).exists():
            shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("README.md", "kernelbench_level1_names.txt", "kernelbench_level2_ops.json",
                 "kernelbench_level2_ops_v0.json", "kernelbench_level1_names_v0.txt"):  # fmt: skip
        assert f"synth_modules/data/kernelbench/{data}" in names
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = "from synth_modules.analysis.kernelbench import load_problems; print(len(load_problems('l2')))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 100


def test_extractor_reads_composer_programs():
    """On real generated code, the ops read from the AST are the ops the sample asked for (the composer may
    occasionally substitute one, so a small slack is allowed)."""
    import asyncio

    from synth_modules.backends.builtin import BuiltinBackend
    from synth_modules.program import make_entry_point
    from synth_modules.sampling import UniformSampler
    from synth_modules.types import GenerationRequest

    config = GeneratorConfig(seed=3)
    sampler, backend = UniformSampler(config), BuiltinBackend(config)
    asked = found = 0
    for index in range(60):
        sample = sampler.sample(index)
        request = GenerationRequest(sample, make_entry_point(sample.sampled_ops, sample.id))
        generation = asyncio.run(backend.generate(request))
        in_code = set(normalized_op_sequence(generation.source, generation.entry_point))
        wanted = [op for op in (normalize_op(name) for name in sample.sampled_ops) if op is not None]
        asked += len(wanted)
        found += sum(op in in_code for op in wanted)
    assert asked > 150
    assert found >= 0.95 * asked
