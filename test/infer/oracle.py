"""Oracle segmentation from a reference RTTM, and synthetic tone 'speakers' with an exact
embedding, to test the pipeline's windowing, aggregation and reconstruction without a model."""

from __future__ import annotations

import numpy as np
import torch

from espnet_prune.diar.powerset import Powerset
from espnet_prune.utils.rttm import RttmSegment

RATE = 16000
TONES = (300.0, 700.0, 1300.0, 2100.0)


class OracleSegmentation:
    """Feeds the pipeline the reference as hard powerset log-probabilities, window by window."""

    def __init__(self, turns, num_samples, window_starts, frame_shift=320, frame_length=400,
                 window=8 * RATE):
        self.powerset = Powerset(4, 2)
        speakers = sorted({t.speaker for t in turns})
        hop = frame_shift / RATE
        centre = (frame_length - frame_shift) / 2 / RATE
        num_frames = int(np.ceil(num_samples / frame_shift))
        mid = centre + (np.arange(num_frames) + 0.5) * hop
        self.reference = np.zeros((num_frames, len(speakers)), dtype=np.float32)
        for turn in turns:
            k = speakers.index(turn.speaker)
            self.reference[(mid >= turn.start) & (mid < turn.end), k] = 1
        self.offsets = list(np.asarray(window_starts) // frame_shift)
        self.frames = (window - frame_length) // frame_shift + 1
        self.calls = 0

    def __call__(self, batch, lengths):
        out = []
        for _ in range(len(batch)):
            offset = self.offsets[self.calls]
            self.calls += 1
            local = np.zeros((self.frames, 4), dtype=np.float32)
            chunk = self.reference[offset : offset + self.frames]
            top = np.argsort(-chunk.sum(0))[:4]
            local[: len(chunk), : len(top)] = chunk[:, top]
            classes = self.powerset.to_powerset(torch.from_numpy(local))
            log_probs = torch.full((self.frames, self.powerset.num_classes), -1e4)
            log_probs[torch.arange(self.frames), classes] = 0.0
            out.append(log_probs)
        return torch.stack(out).numpy()

    def to_multilabel(self, log_probs):
        return self.powerset.to_multilabel(torch.from_numpy(np.asarray(log_probs))).numpy()


def tone_recording(rng, duration=40.0, num_speakers=3):
    """Speakers = pure tones; returns audio and reference turns (with overlaps)."""
    audio = 0.01 * rng.normal(size=int(duration * RATE)).astype(np.float32)
    turns = []
    t = 0.0
    while t < duration - 1:
        spk = int(rng.integers(num_speakers))
        length = float(rng.uniform(1.0, 4.0))
        end = min(t + length, duration)
        turns.append(RttmSegment("tones", round(t, 2), round(end - t, 2), f"S{spk}"))
        t = end - float(rng.uniform(0, 0.8)) if rng.uniform() < 0.4 else end + 0.3
    for turn in turns:
        k = int(turn.speaker[1:])
        lo, hi = int(turn.start * RATE), int(turn.end * RATE)
        time = np.arange(lo, hi) / RATE
        audio[lo:hi] += 0.3 * np.sin(2 * np.pi * TONES[k] * time).astype(np.float32)
    return audio, turns


class ToneEmbedding:
    """Exact 'speaker embedding' of tone speakers: energy at each tone frequency."""

    dimension = len(TONES)

    def __call__(self, waveforms):
        out = []
        for wav in waveforms:
            spectrum = np.abs(np.fft.rfft(wav))
            freqs = np.fft.rfftfreq(len(wav), 1 / RATE)
            out.append([spectrum[np.abs(freqs - f) < 20].sum() for f in TONES])
        energy = np.asarray(out, dtype=np.float64) + 1e-9
        return energy / energy.sum(1, keepdims=True) - 1.0 / len(TONES)
