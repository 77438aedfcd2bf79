"""The interface every speaker embedding extractor implements.

Its own module so that the extractors (:mod:`espnet_prune.infer.embeddings`,
:mod:`espnet_prune.infer.wespeaker`) build on it and the registry that names them
(:data:`espnet_prune.infer.embeddings.EMBEDDINGS`) can import them, without a circle.
"""

from __future__ import annotations

import numpy as np


class SpeakerEmbedding:
    """Base: ``__call__(waveforms) -> [N, D]``; short inputs are tiled to ``min_samples``."""

    dimension: int = 0
    sample_rate: int = 16000
    min_samples: int = 8000

    @classmethod
    def check_conf(cls, conf: dict) -> None:
        """Raise ConfigError for options the extractor cannot be built from (before loading)."""

    def embed_one(self, waveform: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to(self, device: str) -> SpeakerEmbedding:
        return self

    def __call__(self, waveforms: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(waveforms), self.dimension), dtype=np.float32)
        for index, wav in enumerate(waveforms):
            if len(wav) == 0:
                continue
            if len(wav) < self.min_samples:
                wav = np.tile(wav, int(np.ceil(self.min_samples / len(wav))))[: self.min_samples]
            out[index] = self.embed_one(np.asarray(wav, dtype=np.float32))
        return out
