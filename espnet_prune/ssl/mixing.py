"""WavLM's utterance mixing (denoising pre-training): overlap part of another utterance."""

from __future__ import annotations

import torch


def mix_utterances(wav: torch.Tensor, lengths: torch.Tensor | None, prob: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of ``wav [B, T]`` where each utterance, with probability ``prob``, gets a random
    segment of another utterance of the batch added: at most half its length, at a random
    place, at an energy ratio drawn uniformly from [-5, 5] dB (WavLM, section 3.2).  The
    targets stay those of the primary utterance, so the model learns to predict the main
    speaker's content through an interfering one.  Padding stays zero.
    """
    batch, total = wav.shape
    out = wav.clone()
    if batch < 2 or prob <= 0:
        return out
    lengths = (torch.full((batch,), total) if lengths is None else lengths.cpu()).long()

    def rand(*size):
        return torch.rand(size, generator=generator)

    for i in range(batch):
        if float(rand(1)) >= prob or int(lengths[i]) < 2:
            continue
        j = int(torch.randint(batch - 1, (1,), generator=generator))
        j = j + 1 if j >= i else j
        length_i, length_j = int(lengths[i]), int(lengths[j])
        size = min(int(float(rand(1)) * length_i / 2) + 1, length_j)
        start_j = int(torch.randint(length_j - size + 1, (1,), generator=generator))
        start_i = int(torch.randint(length_i - size + 1, (1,), generator=generator))
        primary = wav[i, :length_i]
        noise = wav[j, start_j : start_j + size]
        ratio_db = float(rand(1)) * 10.0 - 5.0  # primary energy / interference energy
        energy_p = primary.pow(2).mean().clamp_min(1e-8)
        energy_n = noise.pow(2).mean().clamp_min(1e-8)
        scale = torch.sqrt(energy_p / (energy_n * 10 ** (ratio_db / 10)))
        out[i, start_i : start_i + size] += scale * noise
    return out
