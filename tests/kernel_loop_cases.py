"""A small CPU task and three scripted answers for the loop tests: a broken kernel, a reward hack, and a correct
kernel that is faster than the task (the task computes a softmax one row at a time on purpose)."""

from __future__ import annotations

TASK = '''\
import torch
import torch.nn as nn


class Model(nn.Module):
    """Row-wise softmax of scaled inputs, one row at a time (slow on purpose)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        rows = []
        for row in x * self.scale:
            shifted = torch.exp(row - row.max())
            rows.append(shifted / shifted.sum())
        return torch.stack(rows)


def get_inputs():
    return [torch.randn(64, 128)]


def get_init_inputs():
    return [0.5]
'''

# Wrong reduction axis: runs, but every output is wrong (a mismatch).
BROKEN = """\
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return torch.softmax(x * self.scale, dim=0)
"""

# A "custom kernel" that falls back to PyTorch whenever it fails (and it always fails): a reward hack.
HACK = """\
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def _fused_kernel(self, x):
        raise NotImplementedError("kernel not written yet")

    def forward(self, x):
        try:
            return self._fused_kernel(x)
        except Exception:
            return torch.softmax(x * self.scale, dim=-1)
"""

CORRECT = """\
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return torch.softmax(x * self.scale, dim=-1)
"""

IDEAS = '["Replace the per-row loop with one fused softmax over the last dimension"]'


def fenced(code: str, prose: str = "Here is the kernel.") -> str:
    return f"{prose}\n\n```python\n{code.rstrip()}\n```\n"
