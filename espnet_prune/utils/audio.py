"""Audio reading with the checks diarization needs (16 kHz mono), through soundfile."""

from __future__ import annotations

import functools
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
    """Sample rate, length and channels of ``path``; a file whose data stops before the length
    its header declares (a truncated copy) is a DataError naming it (:func:`check_complete`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file does not exist")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError variants
        raise DataError(f"{path}: cannot read audio ({exc})") from None
    stat = path.stat()
    check_complete(str(path), stat.st_size, stat.st_mtime_ns, info.format, int(info.frames))
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


RIFF_FORMATS = ("WAV", "WAVEX")
STREAMING_SIZES = (0, 0xFFFFFFFF)  # a WAV written while recording: length not in the header


def wav_data_chunk(path: str) -> tuple[int, int, int] | None:
    """``(declared data bytes, bytes present after the chunk header, byte rate)`` of a RIFF
    WAV's ``data`` chunk, read from the header; None when the file is not RIFF/RIFX WAVE or the
    size is a streaming placeholder.

    libsndfile clamps a WAV's frame count to the bytes present, so a truncated copy reads as a
    shorter recording without a word; the declared size is only in the header."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        order = "<" if head[:4] == b"RIFF" else ">"
        fh.seek(0, 2)
        size = fh.tell()
        position, byte_rate = 12, 0
        while position + 8 <= size:
            fh.seek(position)
            chunk, length = struct.unpack(order + "4sI", fh.read(8))
            if chunk == b"fmt " and length >= 12:
                byte_rate = struct.unpack(order + "I", fh.read(12)[8:12])[0]
            if chunk == b"data":
                if length in STREAMING_SIZES:
                    return None
                return length, size - position - 8, byte_rate
            position += 8 + length + (length & 1)
    return None


@functools.lru_cache(maxsize=4096)
def check_complete(path: str, size: int, mtime_ns: int, major_format: str, frames: int) -> None:
    """DataError when the audio stops before the length its header declares: for WAV the
    ``data`` chunk's size against the bytes present; for other formats (whose frame count is
    the header's) the last frame must decode. Cached per file version (size, mtime): training
    reads the same files chunk by chunk."""
    if major_format in RIFF_FORMATS:
        chunk = wav_data_chunk(path)
        if chunk is not None and chunk[0] > chunk[1]:
            declared, present, byte_rate = chunk
            said = (f"{declared / byte_rate:.3f} s" if byte_rate else f"{declared} bytes")
            held = (f"{present / byte_rate:.3f} s" if byte_rate else f"{present} bytes")
            raise DataError(f"{path}: audio is truncated: its header declares {said} of data "
                            f"but the file holds {held}; copy or convert it again")
        return
    if frames == 0:
        return
    try:
        with sf.SoundFile(path) as fh:
            fh.seek(frames - 1)
            decoded = len(fh.read(1, dtype="float32", always_2d=True))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError variants
        raise DataError(f"{path}: audio is truncated or corrupt: its header declares "
                        f"{frames} samples but they cannot all be decoded ({exc})") from None
    if decoded != 1:
        raise DataError(f"{path}: audio is truncated or corrupt: its header declares "
                        f"{frames} samples but fewer can be decoded")


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
