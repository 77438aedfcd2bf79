"""EEND powerset diarization model for ESPnet's trainer.

frontend (features ``[B, F, D]``) → Linear(D → d) + LayerNorm → Conformer → Linear(d → C)
→ log-softmax over the C powerset classes; trained with the permutation-invariant powerset NLL.
"""

from __future__ import annotations

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_prune.diar.powerset import Powerset, frame_der
from espnet_prune.errors import ConfigError

# Label and model frame counts of a chunk may differ by rounding at the chunk end.
FRAME_TOLERANCE = 2


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class PowersetDiarizationModel(AbsESPnetModel):
    def __init__(
        self,
        frontend: AbsFrontend,
        encoder: AbsEncoder,
        max_speakers_per_chunk: int = 4,
        max_speakers_per_frame: int = 2,
    ):
        super().__init__()
        self.frontend = frontend
        self.powerset = Powerset(max_speakers_per_chunk, max_speakers_per_frame)
        width = encoder.output_size()
        self.projection = torch.nn.Linear(frontend.output_size(), width)
        self.projection_norm = torch.nn.LayerNorm(width)
        self.encoder = encoder
        self.classifier = torch.nn.Linear(width, self.powerset.num_classes)

    # The frontend owns the frame geometry (samples); the data pipeline and inference ask here.
    @property
    def frame_shift(self) -> int:
        return int(self.frontend.frame_shift)

    @property
    def frame_length(self) -> int:
        return int(self.frontend.frame_length)

    def log_probs_from_features(
        self, feats: torch.Tensor, feats_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frontend features ``[B, F, D]`` → powerset log-probabilities ``[B, F, C]``."""
        x = self.projection_norm(self.projection(feats))
        x, lengths, _ = self.encoder(x, feats_lengths)
        return torch.log_softmax(self.classifier(x), dim=-1), lengths

    def encode(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms ``[B, T]`` → ``(log-probabilities [B, F, C], frame lengths [B])``."""
        feats, feats_lengths = self.frontend(speech, speech_lengths)
        return self.log_probs_from_features(feats, feats_lengths)

    def predict(self, speech: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Powerset log-probabilities ``[B, F, C]`` (frames past a chunk's length are padding)."""
        if speech.dim() == 1:
            speech = speech[None]
        if lengths is None:
            lengths = torch.full(
                (speech.shape[0],), speech.shape[1], dtype=torch.long, device=speech.device
            )
        return self.encode(speech, lengths)[0]

    def diarization_loss(
        self,
        log_probs: torch.Tensor,
        frame_lengths: torch.Tensor,
        spk_labels: torch.Tensor,
        spk_labels_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Permutation-invariant powerset loss plus batch DER and frame accuracy."""
        frames = min(log_probs.shape[1], spk_labels.shape[1])
        if abs(log_probs.shape[1] - spk_labels.shape[1]) > FRAME_TOLERANCE:
            raise ConfigError(
                f"the model gives {log_probs.shape[1]} frames but the labels have "
                f"{spk_labels.shape[1]}: the data pipeline's frame geometry does not match the "
                f"frontend (frame_shift {self.frame_shift}, frame_length {self.frame_length})"
            )
        log_probs, spk_labels = log_probs[:, :frames], spk_labels[:, :frames]
        valid = torch.minimum(frame_lengths.to(spk_labels_lengths.device), spk_labels_lengths)
        mask = lengths_to_mask(valid.to(log_probs.device), frames)
        loss, target = self.powerset.permutation_invariant_loss(log_probs, spk_labels, mask)
        with torch.no_grad():
            predicted = log_probs.argmax(dim=-1)
            accuracy = ((predicted == target) & mask).sum() / mask.sum().clamp(min=1)
            reference = self.powerset.fit_speakers(spk_labels, mask)
            errors, speech = frame_der(
                self.powerset.to_multilabel(predicted), reference, mask, self.powerset
            )
            der = errors / speech.clamp(min=1.0)
        stats = {"loss": loss.detach(), "der": der.detach(), "acc": accuracy.detach()}
        return loss, stats

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        spk_labels: torch.Tensor,
        spk_labels_lengths: torch.Tensor,
        **kwargs,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        log_probs, frame_lengths = self.encode(speech, speech_lengths)
        loss, stats = self.diarization_loss(
            log_probs, frame_lengths, spk_labels, spk_labels_lengths
        )
        # ESPnet's convention: 1-dim tensors on the loss's device, so that DataParallel
        # (--ngpu N) can gather the replicas' outputs and recursive_average (DDP) can sum them.
        # The weight is the batch size: ESPnet averages the ranks' losses weighted by it.
        weight = torch.tensor(speech.shape[0], device=loss.device)
        return force_gatherable((loss, stats, weight), loss.device)

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> dict[str, torch.Tensor]:
        feats, feats_lengths = self.frontend(speech, speech_lengths)
        return {"feats": feats, "feats_lengths": feats_lengths}
