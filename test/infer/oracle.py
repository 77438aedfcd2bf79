"""Oracle segmentation from a reference RTTM, and synthetic tone 'speakers' with an exact
embedding, to test the pipeline's windowing, aggregation and reconstruction without a model."""

from __future__ import annotations

import numpy as np

from espnet_prune.diar.powerset import Powerset
from espnet_prune.infer.oracle import OracleSegmentation as LibraryOracleSegmentation
from espnet_prune.utils.rttm import RttmSegment

RATE = 16000
TONES = (300.0, 700.0, 1300.0, 2100.0)


class OracleSegmentation(LibraryOracleSegmentation):
    """The library's oracle with the tests' defaults (4 local speakers, 2 per frame)."""

    def __init__(self, turns, num_samples, window_starts, frame_shift=320, frame_length=400,
                 window=8 * RATE):
        super().__init__(turns, num_samples, window_starts, Powerset(4, 2), frame_shift,
                         frame_length, window, RATE)


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
