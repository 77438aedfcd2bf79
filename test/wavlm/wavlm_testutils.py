"""Helpers shared by the WavLM tests."""

import torch


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def randomize_(model: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """Perturb every parameter so no layer keeps its trivial init (ones/zeros)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.add_(torch.randn_like(p) * scale)
    return model
