"""Optimiser parameter groups: weights, gate log-alphas and Lagrange multipliers learn at
different rates (paper: 2e-4, 2e-2, 2e-2), none of them with weight decay by default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from espnet_prune.errors import ConfigError


def param_groups(
    model: nn.Module,
    groups: Mapping[str, Iterable[nn.Parameter]],
    learning_rates: Mapping[str, float],
    weight_decay: Mapping[str, float] | None = None,
) -> list[dict]:
    """One optimiser group per name; every trainable parameter of ``model`` in exactly one.

    Frozen parameters (the teacher) are left out; a group with no parameter is dropped (a
    post-pruning run has no gates and no multipliers).  A trainable parameter missing from all
    groups, or listed twice, is a programming error and raises.
    """
    weight_decay = weight_decay or {}
    trainable = {id(p): name for name, p in model.named_parameters() if p.requires_grad}
    seen: dict[int, str] = {}
    result = []
    for group_name, params in groups.items():
        if group_name not in learning_rates:
            raise ConfigError(f"no learning rate given for parameter group {group_name!r}")
        chosen = []
        for p in params:
            if not p.requires_grad:
                continue
            if id(p) in seen:
                raise ValueError(
                    f"parameter {trainable.get(id(p), '?')} is in groups "
                    f"{seen[id(p)]!r} and {group_name!r}"
                )
            seen[id(p)] = group_name
            chosen.append(p)
        if chosen:
            result.append(
                {
                    "name": group_name,
                    "params": chosen,
                    "lr": float(learning_rates[group_name]),
                    "weight_decay": float(weight_decay.get(group_name, 0.0)),
                }
            )
    missing = [name for pid, name in trainable.items() if pid not in seen]
    if missing:
        raise ValueError(f"trainable parameters in no optimiser group: {missing[:5]}")
    return result


def build_optimizer(
    optim_class: type[torch.optim.Optimizer], groups: list[dict], **optim_conf
) -> torch.optim.Optimizer:
    """``optim_class(groups, **optim_conf)``; per-group lr/weight_decay override optim_conf."""
    optim_conf = {k: v for k, v in optim_conf.items() if k not in ("lr", "weight_decay")}
    first_lr = groups[0]["lr"] if groups else 0.0
    return optim_class(groups, lr=first_lr, **optim_conf)


def with_percentile_clipping(
    optim_class: type[torch.optim.Optimizer],
    percentile: float = 90.0,
    history_size: int = 1000,
    skip_groups: tuple[str, ...] = ("lambda",),
) -> type[torch.optim.Optimizer]:
    """``optim_class`` whose ``step()`` first clips the gradient norm at the ``percentile``-th
    percentile of the last ``history_size`` norms, the current one included: the reference
    recipe's adaptive clipping (DiariZen ``auto_clip_grad_norm_``: 90th percentile of 1000).

    The norm covers the model's parameters (groups named in ``skip_groups`` — the Lagrange
    multipliers, which the reference keeps outside its model — are neither counted nor
    clipped).  It runs where ESPnet calls ``optimizer.step()``: after the gradients of a whole
    (accumulated, all-reduced, AMP-unscaled) update, like the reference's.  ESPnet's own
    ``grad_clip`` still applies before it; set it to ``.inf`` to use this alone.  The history
    is not checkpointed (neither is the reference's): a resumed run starts a new one.
    """
    if not 0.0 < percentile <= 100.0 or history_size < 1:
        raise ConfigError(f"grad_clip_percentile must lie in (0, 100] and the history >= 1, got "
                          f"{percentile}, {history_size}")

    class PercentileClipped(optim_class):
        def step(self, closure=None):
            import numpy as np

            params = [p for group in self.param_groups if group.get("name") not in skip_groups
                      for p in group["params"] if p.grad is not None]
            if params:
                norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
                history = self.__dict__.setdefault("grad_norm_history", [])
                if np.isfinite(norm):  # (ESPnet skips non-finite updates before this)
                    history.append(norm)
                    del history[:-history_size]
                    torch.nn.utils.clip_grad_norm_(
                        params, float(np.percentile(history, percentile)))
            return super().step(closure)

    PercentileClipped.__name__ = PercentileClipped.__qualname__ = (
        f"{optim_class.__name__}PercentileClipped")
    return PercentileClipped
