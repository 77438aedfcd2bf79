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


# Only IEEE-float encodings can store NaN/inf: every other subtype (PCM_16/24/32, U-law,
# ADPCM ...) decodes to finite samples, so their files are not scanned.
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
FINITE_BLOCK = 1 << 20  # samples per block of the non-finite scan (4 MiB as float32)


def check_finite(path: str | Path, block: int = FINITE_BLOCK) -> None:
    """DataError naming ``path`` and the first position when a sample is NaN or ±inf.

    Streamed block by block (memory stays at one block); files whose encoding cannot hold
    non-finite values are not read at all. Samples are checked as float32, as they are used
    (a finite float64 beyond the float32 range counts as inf).
    """
    try:
        with sf.SoundFile(str(path)) as fh:
            if fh.subtype not in FLOAT_SUBTYPES:
                return
            rate, offset = fh.samplerate, 0
            while True:
                data = fh.read(block, dtype="float32", always_2d=True)
                if len(data) == 0:
                    return
                bad = ~np.isfinite(data).all(axis=1)
                if bad.any():
                    first = offset + int(np.argmax(bad))
                    raise DataError(
                        f"{path}: audio has non-finite samples (NaN or inf), the first at "
                        f"{first / rate:.3f} s (sample {first}); repair or drop the recording"
                    )
                offset += len(data)
    except DataError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError variants
        raise DataError(f"{path}: cannot read audio ({exc})") from None


def check_audio(
    path: str | Path, sample_rate: int | None = 16000, finite: bool = False
) -> AudioInfo:
    """Info of a readable, non-empty, mono file at ``sample_rate``; DataError otherwise.

    ``finite=True`` also reads float-encoded files through to refuse NaN/inf samples
    (:func:`check_finite`); the other checks only read the header.
    """
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
    if finite:
        check_finite(path)
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
