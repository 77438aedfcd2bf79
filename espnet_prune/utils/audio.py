"""Audio reading with the checks diarization needs (16 kHz mono), through soundfile."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from espnet_prune.errors import DataError


class AudioInfo(NamedTuple):
    sample_rate: int
    num_samples: int
    channels: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file does not exist")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError variants
        raise DataError(f"{path}: cannot read audio ({exc})") from None
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def check_audio(path: str | Path, sample_rate: int | None = 16000) -> AudioInfo:
    """Info of a readable, non-empty, mono file at ``sample_rate``; DataError otherwise."""
    info = audio_info(path)
    if info.channels != 1:
        raise DataError(
            f"{path}: audio has {info.channels} channels; expected mono "
            "(take one channel, e.g. the first channel of a far-field array)"
        )
    if sample_rate is not None and info.sample_rate != sample_rate:
        raise DataError(f"{path}: sample rate is {info.sample_rate} Hz; expected {sample_rate} Hz")
    if info.num_samples == 0:
        raise DataError(f"{path}: audio file is empty")
    return info


def read_audio(
    path: str | Path,
    sample_rate: int | None = 16000,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Mono float32 samples of ``path`` between ``start`` and ``end`` seconds."""
    info = check_audio(path, sample_rate)
    first = 0 if start is None else max(0, int(round(start * info.sample_rate)))
    last = info.num_samples
    if end is not None:
        last = min(last, int(round(end * info.sample_rate)))
    if last <= first:
        return np.zeros(0, dtype=np.float32)
    try:
        data, _ = sf.read(str(path), start=first, stop=last, dtype="float32", always_2d=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read audio ({exc})") from None
    return np.ascontiguousarray(data, dtype=np.float32)
