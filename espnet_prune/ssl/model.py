"""Masked prediction (HuBERT; WavLM with utterance mixing) around the prunable WavLM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.models.wav2vec2.components import LogitGenerator

from espnet_prune.ssl.masking import span_mask
from espnet_prune.ssl.mixing import mix_utterances
from espnet_prune.ssl.targets import KMeansQuantizer
from espnet_prune.wavlm.model import WavLM

# the seed of the validation masks: every validation pass masks the same frames
EVAL_MASK_SEED = 0


class MaskedPredictionModel(nn.Module):
    """``forward(speech [B, T], speech_lengths [B]) -> (loss, stats, weight)``.

    The targets (cluster indices of ``target_features`` of the clean input, by
    ``quantizer``) are computed per batch, so no label files exist.  Frames chosen by
    :func:`espnet_prune.ssl.masking.span_mask` get a learned mask embedding in place of the
    feature projection's output (a forward hook: the WavLM's own ``extract_features`` runs
    unchanged), the last hidden state is projected and scored against one embedding per
    cluster by cosine similarity / 0.1 (torchaudio's ``LogitGenerator``, HuBERT's head), and the
    loss is the cross-entropy on the masked frames (HuBERT's ``pred_nomask_weight`` 0).
    ``stats``: ``loss``, ``acc_masked`` (chance: 1 / clusters), ``acc_unmasked``.
    Only :attr:`wavlm` is kept after pre-training; the mask embedding and head are dropped.
    """

    def __init__(self, wavlm: WavLM, target_features: nn.Module, quantizer: KMeansQuantizer,
                 mask_start_prob: float = 0.08, mask_length: int = 10, final_dim: int | None = None,
                 utterance_mix_prob: float = 0.0):
        super().__init__()
        self.wavlm = wavlm
        self.target_features = target_features
        self.quantizer = quantizer
        dim = wavlm.config.embed_dim
        self.mask_start_prob, self.mask_length = mask_start_prob, mask_length
        self.utterance_mix_prob = utterance_mix_prob
        # as torchaudio's MaskGenerator initialises it
        self.mask_embedding = nn.Parameter(torch.empty(dim).uniform_())
        self.head = LogitGenerator(dim, quantizer.num_clusters, final_dim or min(256, dim),
                                   skip_masked=False, skip_nomask=False)

    def make_mask(self, num_frames: int, frame_lengths: torch.Tensor, batch: int) -> torch.Tensor:
        args = (num_frames, frame_lengths, batch, self.mask_start_prob, self.mask_length)
        if self.training:
            return span_mask(*args)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(EVAL_MASK_SEED)
            return span_mask(*args)

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor | None = None, **_):
        batch, total = speech.shape
        if speech_lengths is None:
            speech_lengths = torch.full((batch,), total, dtype=torch.long, device=speech.device)
        targets = self.quantizer(self.target_features(speech, speech_lengths))  # [B, Ft]
        frame_lengths = self.wavlm.frame_lengths(speech_lengths)
        num_frames = int(self.wavlm.frame_lengths(torch.tensor([total]))[0])
        # the targets may count one frame less than the CNN: only frames both have count
        valid_frames = frame_lengths.clamp_max(targets.shape[1])
        mask = self.make_mask(num_frames, valid_frames, batch).to(speech.device)

        if self.training and self.utterance_mix_prob > 0:
            speech = mix_utterances(speech, speech_lengths, self.utterance_mix_prob)

        def replace(module, inputs, output):
            return torch.where(mask[..., None], self.mask_embedding.to(output.dtype), output)

        handle = self.wavlm.feature_projection.register_forward_hook(replace)
        try:
            hidden, _ = self.wavlm.extract_features(speech, speech_lengths)
        finally:
            handle.remove()
        last = hidden[-1]
        frames = min(last.shape[1], targets.shape[1])
        last, targets, mask = last[:, :frames], targets[:, :frames], mask[:, :frames]
        valid = torch.arange(frames, device=speech.device)[None] < valid_frames[:, None]
        unmasked = valid & ~mask
        logit_m, logit_u = self.head(last, targets, mask, unmasked)
        zeros_m = torch.zeros(logit_m.shape[0], dtype=torch.long, device=logit_m.device)
        loss = F.cross_entropy(logit_m, zeros_m)  # the positive is column 0
        with torch.no_grad():
            acc_m = (logit_m.argmax(-1) == 0).float().mean()
            acc_u = (logit_u.argmax(-1) == 0).float().mean() if logit_u.numel() else acc_m * 0
        stats = {"loss": loss.detach(), "acc_masked": acc_m, "acc_unmasked": acc_u}
        weight = torch.tensor(float(batch), device=loss.device)
        return loss, stats, weight

