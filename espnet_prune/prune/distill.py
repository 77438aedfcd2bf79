"""Layer-to-layer distillation loss: L1 + (−cosine similarity), averaged over the distilled
layers, no prediction heads.

Student and teacher hidden states are compared directly at the same layer indices (the
student keeps the model dimension, only inner units are pruned), unlike DPHuBERT which
puts a linear head on the student.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from espnet_prune.errors import ConfigError


def frame_mask(lengths: torch.Tensor | None, batch: int, frames: int, device) -> torch.Tensor:
    """[B, F] bool, True on real frames (all True without lengths)."""
    if lengths is None:
        return torch.ones(batch, frames, dtype=torch.bool, device=device)
    return torch.arange(frames, device=device)[None, :] < lengths.to(device)[:, None]


def distillation_loss(
    student_hiddens: Sequence[torch.Tensor],
    teacher_hiddens: Sequence[torch.Tensor],
    layers: Sequence[int],
    lengths: torch.Tensor | None = None,
    l1_weight: float = 1.0,
    cos_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``l1_weight·mean|s − t| − cos_weight·mean cos(s, t)``, each mean over the distilled
    ``layers`` too, i.e. the mean over layers of the per-layer terms.

    As in the reference (L1 and cosine each averaged over the stacked (batch, layer, time,
    dim) tensor).  Hidden states are lists of [B, F, D] (index 0 = input of the first
    Transformer layer).  Means run over real frames only (``lengths`` in frames; the
    reference's fixed-length chunks have none to exclude) and, for L1, over features.
    Returns the loss and detached stats ``distill_l1`` / ``distill_cos`` (also layer means).
    """
    if len(student_hiddens) != len(teacher_hiddens):
        raise ConfigError(
            f"student has {len(student_hiddens) - 1} layers but the teacher "
            f"{len(teacher_hiddens) - 1}: distillation needs the same depth"
        )
    if not layers:
        raise ConfigError("distill_layers is empty")
    for layer in layers:
        if not 0 <= layer < len(teacher_hiddens):
            raise ConfigError(
                f"distill layer {layer} outside 0..{len(teacher_hiddens) - 1} (0 = CNN output)"
            )
    batch, frames, _ = teacher_hiddens[0].shape
    mask = frame_mask(lengths, batch, frames, teacher_hiddens[0].device)
    n_frames = mask.sum().clamp(min=1)
    weights = mask.to(teacher_hiddens[0].dtype)

    total = teacher_hiddens[0].new_zeros(())
    l1_sum = teacher_hiddens[0].new_zeros(())
    cos_sum = teacher_hiddens[0].new_zeros(())
    for layer in layers:
        student, teacher = student_hiddens[layer], teacher_hiddens[layer]
        if student.shape != teacher.shape:
            raise ConfigError(
                f"layer {layer}: student hidden {tuple(student.shape)} != teacher "
                f"{tuple(teacher.shape)}"
            )
        l1 = ((student - teacher).abs().mean(-1) * weights).sum() / n_frames
        cos = (F.cosine_similarity(student, teacher, dim=-1) * weights).sum() / n_frames
        total = total + l1_weight * l1 - cos_weight * cos
        l1_sum = l1_sum + l1.detach()
        cos_sum = cos_sum + cos.detach()
    stats = {"distill_l1": l1_sum / len(layers), "distill_cos": cos_sum / len(layers)}
    return total / len(layers), stats
