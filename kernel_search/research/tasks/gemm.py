import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """GEMM with a bias and GELU epilogue (Inductor: an extern matmul plus a fused Triton epilogue)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return F.gelu(self.linear(x))


def get_inputs():
    return [torch.randn(2048, 2048)]


def get_init_inputs():
    return [2048, 2048]
