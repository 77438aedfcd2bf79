"""Oracle stand-ins for the two halves of the pipeline, to find where its DER comes from.

* :class:`OracleSegmentation`: the reference RTTM as hard powerset decisions, window by window
  (perfect local segmentation; the real embeddings and clustering still decide who is who).
* :class:`OracleEmbedding`: each window-local speaker's "embedding" is the one-hot vector of
  the reference speaker its frames overlap most (perfect clustering of the real segmentation).

Both use the pipeline's frame grid: frame ``i`` of a window starting at sample ``s`` is centred
on ``s + i·shift + length/2``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from espnet_prune.utils.frames import num_frames
from espnet_prune.utils.rttm import RttmSegment


def reference_frames(turns: list[RttmSegment], num_samples: int, frame_shift: int,
                     frame_length: int, sample_rate: int = 16000):
    """Speaker activity ``[ceil(T / shift), S]`` on the global frame grid, and the speakers."""
    speakers = sorted({turn.speaker for turn in turns})
    hop = frame_shift / sample_rate
    centre = (frame_length - frame_shift) / 2 / sample_rate
    num_frames = int(np.ceil(num_samples / frame_shift))
    middle = centre + (np.arange(num_frames) + 0.5) * hop
    activity = np.zeros((num_frames, len(speakers)), dtype=np.float32)
    for turn in turns:
        k = speakers.index(turn.speaker)
        activity[(middle >= turn.start) & (middle < turn.start + turn.duration), k] = 1
    return activity, speakers


class OracleSegmentation:
    """The reference as powerset log-probabilities; windows are served in the pipeline's order
    (the pipeline asks for every window once, in order). Up to ``powerset.max_speakers_per_chunk``
    most active reference speakers per window."""

    def __init__(self, turns, num_samples, window_starts, powerset, frame_shift, frame_length,
                 window=8 * 16000, sample_rate=16000):
        import torch

        self.torch = torch
        self.powerset = powerset
        self.reference, _ = reference_frames(turns, num_samples, frame_shift, frame_length,
                                             sample_rate)
        self.offsets = [int(s) // frame_shift for s in window_starts]
        self.frames = num_frames(window, frame_shift, frame_length)
        self.calls = 0

    def __call__(self, batch, lengths):
        torch = self.torch
        local_speakers = self.powerset.max_speakers_per_chunk
        out = []
        for _ in range(len(batch)):
            offset = self.offsets[self.calls]
            self.calls += 1
            local = np.zeros((self.frames, local_speakers), dtype=np.float32)
            chunk = self.reference[offset : offset + self.frames]
            top = np.argsort(-chunk.sum(0), kind="stable")[:local_speakers]
            local[: len(chunk), : len(top)] = chunk[:, top]
            # a frame with more speakers than the powerset allows keeps the most active ones
            per_frame = self.powerset.max_speakers_per_frame
            for t in np.flatnonzero(local.sum(1) > per_frame):
                local[t, np.flatnonzero(local[t])[per_frame:]] = 0
            classes = self.powerset.to_powerset(torch.from_numpy(local))
            log_probs = torch.full((self.frames, self.powerset.num_classes), -1e4)
            log_probs[torch.arange(self.frames), classes] = 0.0
            out.append(log_probs)
        return torch.stack(out).numpy()

    def to_multilabel(self, log_probs):
        torch = self.torch
        return self.powerset.to_multilabel(torch.from_numpy(np.asarray(log_probs))).numpy()


class OracleEmbedding:
    """Perfect clustering: one-hot of the reference speaker a local speaker overlaps most.

    A pooling extractor (``embed_masked``): the pipeline hands it whole windows and each local
    speaker's frame mask; windows are located in the recording by their samples. A local
    speaker overlapping no reference speaker gets its own "nobody" dimension.
    """

    def __init__(self, audio: np.ndarray, turns, window_starts, window: int, frame_shift: int,
                 frame_length: int, sample_rate: int = 16000):
        self.reference, self.speakers = reference_frames(turns, len(audio), frame_shift,
                                                         frame_length, sample_rate)
        self.frame_shift = frame_shift
        self.starts: dict[str, list[int]] = {}
        self.audio = np.asarray(audio, dtype=np.float32)
        self.window = window
        for start in window_starts:
            self.starts.setdefault(self._key(self.audio[int(start) : int(start) + window]),
                                   []).append(int(start))

    @staticmethod
    def _key(samples: np.ndarray) -> str:
        return hashlib.sha1(np.ascontiguousarray(samples[:4096], dtype=np.float32)).hexdigest()

    def _locate(self, window: np.ndarray) -> int:
        for start in self.starts.get(self._key(window), []):
            piece = self.audio[start : start + self.window]
            if np.array_equal(window[: len(piece)], piece):
                return start
        raise ValueError("OracleEmbedding: a window that is not in the recording")

    def embed_masked(self, windows, rows, masks):
        out = np.zeros((len(rows), len(self.speakers) + 1), dtype=np.float32)
        for index, (row, mask) in enumerate(zip(rows, masks)):
            offset = self._locate(windows[row]) // self.frame_shift
            local = self.reference[offset : offset + len(mask)]
            overlap = (local * mask[: len(local), None]).sum(0)
            best = int(np.argmax(overlap)) if overlap.size and overlap.max() > 0 else -1
            out[index, best] = 1.0  # -1: the "nobody" dimension
        return out
