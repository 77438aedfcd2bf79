"""Span masking as in HuBERT/wav2vec 2.0: torchaudio's own mask generator, at WavLM frames."""

from __future__ import annotations

import torch
from torchaudio.models.wav2vec2.components import _compute_mask_indices


def span_mask(num_frames: int, frame_lengths: torch.Tensor | None, batch_size: int,
              start_prob: float = 0.08, mask_length: int = 10, min_masks: int = 2) -> torch.Tensor:
    """Bool ``[B, F]``: spans of ``mask_length`` frames starting at ``start_prob`` x F frames
    (HuBERT's p = 8 %, l = 10; spans may overlap, so about 1 - exp(-p l) of the frames are
    masked), at least ``min_masks`` spans per utterance; padding frames (beyond
    ``frame_lengths``) are never masked.  fairseq's and torchaudio's ``mask_prob`` is p x l
    (0.8 in HuBERT's configs).

    This is torchaudio's ``_compute_mask_indices`` (what its HuBERT pre-training uses, the
    same algorithm as fairseq's), called as torchaudio's ``MaskGenerator`` calls it; only the
    clean-up is ours: a span that ran into the padding of a short utterance is cut there.
    """
    padding = None
    if frame_lengths is not None:
        frames = torch.arange(num_frames, device=frame_lengths.device)
        padding = (frames[None, :] >= frame_lengths[:, None]).cpu()
    mask = _compute_mask_indices((batch_size, num_frames), padding, start_prob * mask_length,
                                 mask_length,
                                 mask_type="static", mask_other=0.0, min_masks=min_masks)
    if padding is not None:
        mask = mask & ~padding
    return mask
