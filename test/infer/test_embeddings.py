"""The batched resemblyzer extractor gives resemblyzer's own per-utterance embeddings."""

import numpy as np
import pytest

from espnet_prune.errors import ConfigError
from espnet_prune.infer.embeddings import ResemblyzerEmbedding, build_embedding


def voice(seconds, pitch, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(pitch + 15 * np.sin(2 * np.pi * 2.5 * t)) / 16000
    signal = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(3 * t) ** 2)
    return (0.2 * signal + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_batched_resemblyzer_equals_embed_utterance():
    extractor = ResemblyzerEmbedding(max_batch=4)  # several LSTM batches
    waves = [voice(0.3, 120, 0), voice(2.0, 180, 1), np.zeros(0, np.float32), voice(5.2, 240, 2)]
    batched = extractor(waves)
    assert batched.shape == (4, 256) and not batched[2].any()
    for index in (0, 1, 3):
        wav = waves[index]
        if len(wav) < extractor.min_samples:  # the pipeline's rule for short inputs
            wav = np.tile(wav, 2)[: extractor.min_samples]
        expected = extractor.encoder.embed_utterance(extractor.normalize_level(wav))
        assert float(batched[index] @ expected) > 0.9999
        np.testing.assert_allclose(batched[index], expected, atol=1e-4)


def test_unknown_extractor_and_missing_checkpoint():
    with pytest.raises(ConfigError, match="unknown speaker embedding"):
        build_embedding("xvector")
    with pytest.raises(ConfigError, match="checkpoint"):
        build_embedding("wespeaker_resnet34")
