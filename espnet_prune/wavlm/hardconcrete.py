"""Hard-concrete (stretched, clamped binary-concrete) gates for L0 structured pruning.

Parameterisation (Louizos et al. 2018, as used by CoFi/DPHuBERT): one learnable ``log_alpha``
per unit, temperature beta = 2/3, stretch interval (l, r) = (-0.1, 1.1).

* training: u ~ U(0, 1), s = sigmoid((log u - log(1-u) + log_alpha) / beta),
  z = clamp(s * (r - l) + l, 0, 1) -- exact zeros and ones have non-zero probability;
* expected L0 (probability that z != 0): sigmoid(log_alpha - beta * log(-l / r));
* eval (deterministic): keep the round(sum of expected L0) units with the largest log_alpha;
  a kept unit keeps its soft value sigmoid(0.8 * log_alpha / beta) (the reference's
  empirically chosen expectation), the others are exactly 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

BETA = 2.0 / 3.0
LIMIT_L = -0.1
LIMIT_R = 1.1
EPS = 1e-6


def log_alpha_for_keep_prob(keep_prob: float) -> float:
    """log_alpha whose deterministic soft value is about ``keep_prob`` (reference's init)."""
    return math.log(keep_prob) - math.log(1.0 - keep_prob)


class HardConcrete(nn.Module):
    """``n`` hard-concrete gates; ``forward()`` returns the mask ``[n]``."""

    def __init__(self, n: int, init_keep_prob: float = 0.99, init_std: float = 0.01):
        super().__init__()
        self.n = n
        self.log_alpha = nn.Parameter(torch.empty(n))
        with torch.no_grad():
            self.log_alpha.normal_(log_alpha_for_keep_prob(init_keep_prob), init_std)

    def l0_norm(self) -> torch.Tensor:
        """Differentiable expected number of non-zero gates."""
        return torch.sigmoid(self.log_alpha - BETA * math.log(-LIMIT_L / LIMIT_R)).sum()

    def deterministic_mask(self) -> torch.Tensor:
        log_alpha = self.log_alpha.detach()
        num_kept = int(round(self.l0_norm().item()))
        mask = torch.zeros_like(log_alpha)
        if num_kept > 0:
            kept = torch.topk(log_alpha, num_kept).indices
            mask[kept] = torch.sigmoid(log_alpha[kept] / BETA * 0.8)
        return mask

    def num_kept(self) -> int:
        return int(round(self.l0_norm().item()))

    def forward(self) -> torch.Tensor:
        if not self.training:
            return self.deterministic_mask()
        u = torch.rand_like(self.log_alpha).clamp(EPS, 1.0 - EPS)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / BETA)
        return (s * (LIMIT_R - LIMIT_L) + LIMIT_L).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return str(self.n)
