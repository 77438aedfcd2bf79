"""Training samples for EEND: fixed-length chunks of whole recordings with frame-level labels.

Recordings stay whole on disk (``wav.scp``); a chunk is read on the fly from its offsets, and
its labels are computed from the RTTM at the model's frame rate (a frame is labelled with the
speakers active at its centre).  Everything here is plain numpy/torch so the teacher training
and the pruning stage share one pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from espnet_prune.errors import ConfigError, DataError
from espnet_prune.utils.audio import read_audio
from espnet_prune.utils.datadir import DataDir, validate_data_dir
from espnet_prune.utils.frames import num_frames
from espnet_prune.utils.rttm import RttmSegment

# Regions (whole recording or UEM span) shorter than this give no chunk.
MIN_REGION_SECONDS = 0.5

_validated: dict[tuple[str, int, bool], DataDir] = {}


def load_data_dir(path: str | Path, sample_rate: int = 16000, labels: bool = True) -> DataDir:
    """Validated data dir; cached per process so validating up front costs nothing later.

    ``labels`` False: ``wav.scp`` only (no RTTM, no UEM is read): unlabelled audio."""
    key = (str(Path(path).resolve()), sample_rate, labels)
    if key not in _validated:
        _validated[key] = validate_data_dir(path, sample_rate=sample_rate, require_rttm=labels,
                                            audio_only=not labels)
    return _validated[key]


@dataclass(frozen=True)
class Chunk:
    recording: str
    start: float
    end: float

    @property
    def key(self) -> str:
        return f"{self.recording}_{round(self.start * 1000):09d}_{round(self.end * 1000):09d}"


def chunk_region(start: float, end: float, size: float, shift: float) -> list[tuple[float, float]]:
    """Windows of ``size`` s every ``shift`` s over ``[start, end]``; the tail is covered by a
    last window ending at ``end``; a region shorter than ``size`` is one shorter window."""
    length = end - start
    if length < MIN_REGION_SECONDS:
        return []
    if length <= size + 1e-6:
        return [(start, end)]
    count = int(math.floor((length - size) / shift + 1e-6)) + 1
    windows = [(start + i * shift, start + i * shift + size) for i in range(count)]
    if windows[-1][1] < end - 1e-3:
        windows.append((end - size, end))
    return windows


def make_chunks(data: DataDir, size: float, shift: float) -> list[Chunk]:
    """Chunks of every recording (inside its UEM spans when the data dir has a UEM)."""
    if size <= 0 or shift <= 0:
        raise ConfigError(f"chunk size and shift must be > 0, got {size} and {shift}")
    chunks = []
    for rec in data.recordings:
        duration = data.durations[rec]
        if data.uem is not None:
            if rec not in data.uem:
                continue  # not scored, not trained on
            regions = [(max(0.0, s), min(e, duration)) for s, e in data.uem[rec]]
        else:
            regions = [(0.0, duration)]
        for region_start, region_end in regions:
            for start, end in chunk_region(region_start, region_end, size, shift):
                chunks.append(Chunk(rec, round(start, 3), round(end, 3)))
    if not chunks:
        raise DataError(f"{data.path}: no chunk of audio to train on (recordings/UEM too short)")
    return chunks


def frame_labels(
    segments: list[RttmSegment],
    start: float,
    count: int,
    frame_shift: int,
    frame_length: int,
    sample_rate: int = 16000,
) -> tuple[np.ndarray, list[str]]:
    """Activity ``[count, S]`` (float32 0/1) of the speakers active in the chunk starting at
    ``start`` s, speakers sorted by speech in the chunk (most first, then by name)."""
    per_speaker: dict[str, np.ndarray] = {}
    centre = frame_length / 2.0
    for seg in segments:
        # frame i is active when seg.start <= start + (i*shift + centre)/sr < seg.end
        lo = math.ceil(((seg.start - start) * sample_rate - centre) / frame_shift)
        hi = math.ceil(((seg.end - start) * sample_rate - centre) / frame_shift)
        lo, hi = max(lo, 0), min(hi, count)
        if hi <= lo:
            continue
        column = per_speaker.setdefault(seg.speaker, np.zeros(count, dtype=np.float32))
        column[lo:hi] = 1.0
    speakers = sorted(per_speaker, key=lambda s: (-per_speaker[s].sum(), s))
    labels = np.zeros((count, len(speakers)), dtype=np.float32)
    for index, speaker in enumerate(speakers):
        labels[:, index] = per_speaker[speaker]
    return labels, speakers


class DiarizationChunkDataset(torch.utils.data.Dataset):
    """``dataset[key] -> (key, {"speech": float32 [T], "spk_labels": float32 [F, S]})``.

    ``labels`` False: ``dataset[key] -> (key, {"speech": float32 [T]})`` from a data dir read
    without its RTTM and UEM (:func:`load_data_dir`): chunks of the whole recordings.

    ``frame_shift``/``frame_length``: the frontend's geometry in samples (``F`` is the number
    of frames the model gives for the chunk).

    ``S`` (``num_label_speakers``) is the largest number of speakers in any chunk of the data
    dir, so that batches stack; columns beyond a chunk's speakers are zero.
    """

    def __init__(
        self,
        data_dir: str | Path | DataDir,
        chunk_size: float,
        chunk_shift: float,
        frame_shift: int,
        frame_length: int,
        sample_rate: int = 16000,
        labels: bool = True,
    ):
        self.labels = labels
        self.data = (
            data_dir if isinstance(data_dir, DataDir)
            else load_data_dir(data_dir, sample_rate, labels)
        )
        if not labels and (self.data.rttm or self.data.uem is not None):
            raise ConfigError(f"{self.data.path}: an unlabelled dataset was given annotations")
        self.frame_shift = frame_shift
        self.frame_length = frame_length
        self.sample_rate = sample_rate
        chunks = make_chunks(self.data, chunk_size, chunk_shift)
        self.chunks = {chunk.key: chunk for chunk in chunks}
        self.num_label_speakers = (
            max(1, max(self._speakers_in(c) for c in self.chunks.values())) if labels else 0)

    def _speakers_in(self, chunk: Chunk) -> int:
        return len(
            {
                seg.speaker
                for seg in self.data.rttm.get(chunk.recording, [])
                if seg.start < chunk.end and seg.end > chunk.start
            }
        )

    @property
    def keys(self) -> list[str]:
        return list(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)

    def has_name(self, name: str) -> bool:
        return name in self.names()

    def names(self) -> tuple[str, ...]:
        return ("speech", "spk_labels") if self.labels else ("speech",)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.data.path}, chunks={len(self)}, "
            f"{'labelled' if self.labels else 'unlabelled (wav.scp only)'}, "
            f"frame_shift={self.frame_shift}, frame_length={self.frame_length})"
        )

    def __getitem__(self, key: str) -> tuple[str, dict[str, np.ndarray]]:
        chunk = self.chunks[key]
        first = round(chunk.start * self.sample_rate)
        last = round(chunk.end * self.sample_rate)
        speech = read_audio(
            self.data.wavs[chunk.recording],
            self.sample_rate,
            first / self.sample_rate,
            last / self.sample_rate,
        )
        if speech.shape[0] < last - first:  # end rounded past the file: keep shapes exact
            speech = np.pad(speech, (0, last - first - speech.shape[0]))
        if not self.labels:
            return key, {"speech": speech}
        count = num_frames(speech.shape[0], self.frame_shift, self.frame_length)
        labels, _ = frame_labels(
            self.data.rttm.get(chunk.recording, []),
            first / self.sample_rate,
            count,
            self.frame_shift,
            self.frame_length,
            self.sample_rate,
        )
        padded = np.zeros((count, self.num_label_speakers), dtype=np.float32)
        width = min(labels.shape[1], self.num_label_speakers)
        padded[:, :width] = labels[:, :width]
        return key, {"speech": speech, "spk_labels": padded}
