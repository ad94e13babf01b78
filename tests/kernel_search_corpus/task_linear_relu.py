import torch
import torch.nn as nn

N_IN, N_OUT = 256, 384


class Model(nn.Module):
    """relu(linear(x)) * 2 -- an fp32 task with weights, for the hack corpus."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x):
        return torch.relu(self.linear(x)) * 2.0


def get_inputs():
    return [torch.randn(64, N_IN)]


def get_init_inputs():
    return [N_IN, N_OUT]
