"""Discrete targets of masked prediction: frame features -> k-means cluster index.

First iteration (HuBERT): 39-dim MFCC (13 + deltas + delta-deltas, torchaudio's Kaldi MFCC as
fairseq's ``dump_mfcc_feature.py`` computes it), but at the WavLM frame geometry (25 ms windows
every 20 ms, the CNN's receptive field and stride), so frame ``i`` of the targets is frame ``i``
of the model.  Second iteration: the hidden states of one layer of an earlier pre-trained
WavLM.  Clustering: scikit-learn's ``MiniBatchKMeans`` with fairseq's ``learn_kmeans.py``
settings.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio
from torch import nn

from espnet_prune.errors import ConfigError
from espnet_prune.wavlm.model import WavLM


class MfccFeatures(nn.Module):
    """``forward(wav [B, T], lengths [B] or None) -> [B, F, 39]`` with WavLM's frame count;
    rows beyond an utterance's frames are zero."""

    dim = 39

    def __init__(self, sample_rate: int = 16000, frame_length: int = 400, frame_shift: int = 320):
        super().__init__()
        self.sample_rate = sample_rate
        self.frame_length, self.frame_shift = frame_length, frame_shift

    def num_frames(self, num_samples: int) -> int:
        if num_samples < self.frame_length:
            return 0
        return (num_samples - self.frame_length) // self.frame_shift + 1

    def one(self, wav: torch.Tensor) -> torch.Tensor:
        """[T] -> [F, 39]."""
        if self.num_frames(wav.shape[0]) == 0:
            return wav.new_zeros(0, self.dim)
        mfcc = torchaudio.compliance.kaldi.mfcc(
            wav.float()[None], sample_frequency=self.sample_rate, use_energy=False,
            frame_length=1000 * self.frame_length / self.sample_rate,
            frame_shift=1000 * self.frame_shift / self.sample_rate)  # [F, 13]
        delta = torchaudio.functional.compute_deltas(mfcc.T)
        delta2 = torchaudio.functional.compute_deltas(delta)
        return torch.cat([mfcc, delta.T, delta2.T], dim=1)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        rows = [self.one(w if lengths is None else w[: int(n)])
                for w, n in zip(wav, lengths if lengths is not None else [None] * len(wav))]
        frames = self.num_frames(wav.shape[1])
        out = wav.new_zeros(len(rows), frames, self.dim)
        for i, row in enumerate(rows):
            out[i, : row.shape[0]] = row
        return out


class WavLMLayerFeatures(nn.Module):
    """Second-iteration features: hidden state ``layer`` (0 = CNN/projection output) of a
    frozen WavLM.  ``forward(wav, lengths) -> [B, F, D]``."""

    def __init__(self, wavlm: WavLM, layer: int):
        super().__init__()
        if not 0 <= layer <= wavlm.config.num_layers:
            raise ConfigError(f"target layer {layer} outside 0..{wavlm.config.num_layers}")
        self.wavlm, self.layer = wavlm.eval(), layer
        self.wavlm.requires_grad_(False)
        self.dim = wavlm.config.embed_dim

    def train(self, mode: bool = True):  # always frozen, always eval (no dropout)
        return super().train(False)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        hidden, _ = self.wavlm.extract_features(wav, lengths)
        return hidden[self.layer]


def fit_kmeans(features: np.ndarray, num_clusters: int = 100, seed: int = 0,
               batch_size: int = 10000, n_init: int = 20, max_iter: int = 100) -> np.ndarray:
    """Centroids ``[num_clusters, D]`` (float32) of ``features [N, D]``, fitted as fairseq's
    HuBERT ``learn_kmeans.py`` (and ESPnet's ssl1 recipe) fits them."""
    from sklearn.cluster import MiniBatchKMeans

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] < num_clusters:
        raise ConfigError(f"k-means with {num_clusters} clusters needs at least that many "
                          f"feature frames, got shape {features.shape}")
    kmeans = MiniBatchKMeans(n_clusters=num_clusters, init="k-means++", max_iter=max_iter,
                             batch_size=batch_size, tol=0.0, max_no_improvement=100,
                             n_init=n_init, reassignment_ratio=0.0, random_state=seed)
    kmeans.fit(features)
    return kmeans.cluster_centers_.astype(np.float32)


class KMeansQuantizer(nn.Module):
    """``forward(features [..., D]) -> cluster index [...]`` (nearest centroid, Euclidean)."""

    def __init__(self, centroids: torch.Tensor | np.ndarray):
        super().__init__()
        self.register_buffer("centroids", torch.as_tensor(np.asarray(centroids),
                                                          dtype=torch.float32).clone())

    @property
    def num_clusters(self) -> int:
        return self.centroids.shape[0]

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        flat = features.reshape(-1, features.shape[-1]).float()
        c = self.centroids
        distance = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ c.T + c.pow(2).sum(1)[None]
        return distance.argmin(dim=1).reshape(features.shape[:-1])
