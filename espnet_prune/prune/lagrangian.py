"""Lagrangian sparsity constraint λ1(ŝ − t) + λ2(ŝ − t)² whose multipliers climb the loss.

The multipliers must be trained by gradient *ascent* while everything else descends.  Rather
than a special optimiser, their gradient is negated inside autograd, so any optimiser (and
ESPnet's gradient clipping) sees an ordinary parameter and still moves λ uphill.
"""

from __future__ import annotations

import torch
from torch import nn


class _NegateGradient(torch.autograd.Function):
    """Identity forward, −grad backward (survives deepcopy/pickle, unlike tensor hooks)."""

    @staticmethod
    def forward(ctx, tensor):
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def negate_gradient(tensor: torch.Tensor) -> torch.Tensor:
    return _NegateGradient.apply(tensor)


class SparsityLagrangian(nn.Module):
    """``forward(expected, target) = λ1·(ŝ − t) + λ2·(ŝ − t)²``; λ1 = λ2 = 0 at start.

    Descending this term moves ŝ towards t; the λ gradients are negated so that an optimiser
    step raises the term (gradient ascent), making the constraint stiffer while it is violated.
    """

    def __init__(self):
        super().__init__()
        self.lambda1 = nn.Parameter(torch.zeros(()))
        self.lambda2 = nn.Parameter(torch.zeros(()))

    def forward(self, expected: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
        gap = expected - target
        lambda1 = negate_gradient(self.lambda1)
        lambda2 = negate_gradient(self.lambda2)
        return lambda1 * gap + lambda2 * gap * gap
