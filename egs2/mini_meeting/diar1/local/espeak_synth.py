"""Offline speech synthesis with libespeak-ng (from the espeakng-loader wheel) through ctypes.

The mini corpus needs many distinct, reproducible voices without downloads; espeak-ng's voice
variants (``en+m3``, ``de+f2`` ...) combined with pitch/range/rate give that.
"""

from __future__ import annotations

import ctypes
import threading
import zlib
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4

# variants that are whispered, robotic or otherwise not voice-like; left out of the speaker pool
_UNUSABLE_VARIANTS = {
    "whisper", "whisperf", "croak", "Demonic", "UniRobot", "anikaRobot", "fast", "Mr serious",
}

_CALLBACK_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def espeak_paths() -> tuple[str, str]:
    """(shared library, data dir) of the espeakng-loader wheel."""
    import espeakng_loader

    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def list_voice_variants() -> list[str]:
    """Names of espeak-ng voice variants usable as distinct voices, sorted."""
    variants_dir = Path(espeak_paths()[1]) / "voices" / "!v"
    names = [p.name for p in variants_dir.iterdir() if p.is_file()]
    return sorted(
        n for n in names if n not in _UNUSABLE_VARIANTS and not n.startswith("robosoft")
    )


class EspeakSynthesizer:
    """Synthesise text to a float32 waveform at ``sample_rate`` (library output is 22.05 kHz)."""

    _lock = threading.Lock()
    _lib = None
    _native_rate = 0

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = sample_rate
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK_TYPE(self._collect)
        with self._lock:
            if EspeakSynthesizer._lib is None:
                lib_path, data_path = espeak_paths()
                lib = ctypes.CDLL(lib_path)
                lib.espeak_Initialize.restype = ctypes.c_int
                lib.espeak_Initialize.argtypes = [
                    ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
                ]
                # the data path is the directory *containing* espeak-ng-data
                rate = lib.espeak_Initialize(
                    _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(Path(data_path).parent).encode(), 0
                )
                if rate <= 0:
                    raise RuntimeError(f"espeak_Initialize failed ({rate}) with data {data_path}")
                lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
                lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
                lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
                lib.espeak_Synth.argtypes = [
                    ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                    ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
                ]
                EspeakSynthesizer._lib = lib
                EspeakSynthesizer._native_rate = rate

    def _collect(self, wav, num_samples, events):
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def synthesize(
        self, text: str, voice: str = "en", pitch: int = 50, pitch_range: int = 50,
        rate: int = 175,
    ) -> np.ndarray:
        """``voice`` is ``language[+variant]``; pitch/range 0..99; rate in words per minute.

        Reproducible per call: espeak-ng's random generator (used by most voice variants) is
        seeded from the call's arguments (measured before: 73 of the 88 variants gave different
        samples for two identical calls, and different corpora from run to run).
        """
        lib = self._lib
        with self._lock:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            lib.espeak_SetParameter(_PARAM_RANGE, int(pitch_range), 0)
            lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
            lib.espeak_SetSynthCallback(self._callback)
            # the voice variants' breath/flutter use espeak-ng's own random generator, whose
            # state differs from process to process: seed it from the call itself, so the
            # same call gives the same samples in any process, in any order
            lib.espeak_ng_SetRandSeed(
                zlib.crc32(f"{voice}|{pitch}|{pitch_range}|{rate}|{text}".encode())
            )
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            status = lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed ({status}) for voice {voice!r}")
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        audio = np.concatenate(chunks).astype(np.float32) / 32768.0
        if self._native_rate != self.sample_rate:
            gcd = np.gcd(self._native_rate, self.sample_rate)
            audio = resample_poly(
                audio, self.sample_rate // gcd, self._native_rate // gcd
            ).astype(np.float32)
        return audio
