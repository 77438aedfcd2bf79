"""Target sparsity warm-up whose position is part of the model state (so resume continues it)."""

from __future__ import annotations

import torch
from torch import nn

from espnet_prune.errors import ConfigError


class TargetSchedule(nn.Module):
    """t(step) = target · min(1, step / warmup_steps): linear from 0, then constant.

    ``step`` counts training batches already seen; it is a buffer, hence saved in every ESPnet
    checkpoint and restored by ``--resume``.  ``warmup_steps == 0`` means the target from the
    start.
    """

    def __init__(self, target: float, warmup_steps: int):
        super().__init__()
        if not 0.0 <= target < 1.0:
            raise ConfigError(f"target_sparsity must lie in [0, 1), got {target}")
        if warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.target = float(target)
        self.warmup_steps = int(warmup_steps)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def current(self) -> float:
        if self.warmup_steps == 0:
            return self.target
        return self.target * min(1.0, int(self.step) / self.warmup_steps)

    def advance(self) -> None:
        self.step += 1

    def extra_repr(self) -> str:
        return f"target={self.target}, warmup_steps={self.warmup_steps}"
