"""Property test of the streaming pipeline's frame bookkeeping over audio lengths.

Every frame geometry the project has (WavLM 320/400 samples, fbank 10 ms = 160/400 and 20 ms =
320/400 with a 25 ms frame, and a long-frame 320/800 variant), window steps 0.8/4/8 s, batch sizes
1 and 32, and 300+ audio lengths from one frame to 100 s, the edges included (shorter than one
window, exactly one window, one sample more). The stand-in segmentation behaves like the real
models: it returns only ``floor((max_len - frame_length) / frame_shift) + 1`` frames for a batch,
so a batch holding only a partial last window gives fewer frames than a full one (the crash of
``mm_test_002``, 586,513 samples, in the demo). Checked: no exception, every output segment lies
inside the audio, speech is found where the stand-in says so.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from espnet_prune.infer.clustering import AgglomerativeClustering
from espnet_prune.infer.pipeline import DiarizationPipeline, InferenceConfig

RATE = 16000
WINDOW = 8 * RATE
GEOMETRIES = {"wavlm": (320, 400), "fbank10ms": (160, 400), "fbank20ms": (320, 400),
              "long_frame": (320, 800)}
STEPS = (0.8, 4.0, 8.0)
BATCH_SIZES = (1, 32)
SPEAKERS = 4


class TrimmingSegmentation:
    """Frames like the real frontends (trimmed to the longest window of the batch); local
    speaker k is active in frames whose global index lies in its own periodic pattern."""

    def __init__(self, frame_shift: int, frame_length: int):
        self.frame_shift, self.frame_length = frame_shift, frame_length
        self.offsets: list[int] = []

    def __call__(self, batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        longest = int(lengths.max())
        frames = max((longest - self.frame_length) // self.frame_shift + 1, 0)
        out = np.full((len(batch), frames, SPEAKERS), -1.0, dtype=np.float32)
        for row in range(len(batch)):
            own = max((int(lengths[row]) - self.frame_length) // self.frame_shift + 1, 0)
            t = np.arange(own)
            out[row, :own, 0] = 1.0  # speaker 0 talks whenever there is audio
            out[row, :own, 1] = np.where((t // 37) % 2 == 0, 1.0, -1.0)
        return out

    @staticmethod
    def to_multilabel(scores: np.ndarray) -> np.ndarray:
        return (scores > 0).astype(np.uint8)


class MeanEmbedding:
    def __call__(self, waveforms):
        rng = np.random.default_rng(len(waveforms))
        return np.stack([rng.normal(size=8) + 5.0 for _ in waveforms]).astype(np.float32)


def diarize(num_samples: int, geometry: str, step: float, batch_size: int):
    shift, length = GEOMETRIES[geometry]
    audio = (0.1 * np.random.default_rng(num_samples).normal(size=num_samples)).astype(np.float32)
    segmentation = TrimmingSegmentation(shift, length)
    pipeline = DiarizationPipeline(
        segmentation, segmentation.to_multilabel, shift, length, MeanEmbedding(),
        AgglomerativeClustering(threshold=0.7, min_cluster_size=1),
        InferenceConfig(window=WINDOW / RATE, step=step, batch_size=batch_size, median_filter=1),
    )
    return pipeline(audio, "rec")


def lengths_to_test() -> list[int]:
    rng = np.random.default_rng(2024)
    lengths = set(np.unique(np.round(np.exp(rng.uniform(np.log(800), np.log(100 * RATE), 300)))))
    lengths |= {800, 801, 1000, WINDOW - 1, WINDOW, WINDOW + 1, 2 * WINDOW + 1, 100 * RATE,
                586_513, 618_513}  # mm_test_002 of the demo (crashed), the CI test meeting
    for step in STEPS:  # a last window of exactly 0, 1 and frame_length samples
        hop = int(step * RATE)
        lengths |= {WINDOW + 3 * hop, WINDOW + 3 * hop + 1, WINDOW + 3 * hop + 400,
                    WINDOW + 3 * hop + 399}
    return sorted(int(n) for n in lengths)


LENGTHS = lengths_to_test()


def test_there_are_enough_lengths():
    assert len(LENGTHS) >= 300 and LENGTHS[0] <= 800 and LENGTHS[-1] == 100 * RATE


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_every_length_step_and_batch_size_diarizes_inside_the_audio(geometry):
    shift, length = GEOMETRIES[geometry]
    combos = list(itertools.product(STEPS, BATCH_SIZES))
    for index, num_samples in enumerate(LENGTHS):
        if num_samples < length:
            continue
        # every length with one (step, batch) pair, cycling; the edges with all of them
        edge = num_samples in {length, WINDOW - 1, WINDOW, WINDOW + 1, 586_513} \
            or num_samples % 16000 in {0, 1}
        for step, batch_size in combos if edge else [combos[index % len(combos)]]:
            segments = diarize(num_samples, geometry, step, batch_size)
            duration = num_samples / RATE
            context = f"{geometry} n={num_samples} step={step} batch={batch_size}"
            assert segments, context  # speaker 0 is active wherever there is a whole frame
            for seg in segments:
                assert 0.0 <= seg.start and seg.duration > 0, (context, seg)
                assert seg.start + seg.duration <= duration + 1e-6, (context, seg, duration)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("step", STEPS)
def test_window_edges(geometry, step):
    """Shorter than a window, exactly one window, one sample more (both batch sizes)."""
    for num_samples in (WINDOW // 2, WINDOW, WINDOW + 1):
        for batch_size in BATCH_SIZES:
            segments = diarize(num_samples, geometry, step, batch_size)
            assert segments
            assert max(s.start + s.duration for s in segments) <= num_samples / RATE + 1e-6
