"""Kaldi-style data directories for diarization: ``wav.scp``, ``rttm``, optional ``uem``.

Validation runs up front so that a bad corpus fails in seconds with the file and line named,
not hours later inside a training step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from espnet_prune.errors import ConfigError, DataError
from espnet_prune.utils.audio import check_audio
from espnet_prune.utils.rttm import RttmSegment, merge_overlaps, read_rttm, write_rttm

# Annotations may run slightly past the end of the audio (rounding in corpus tools).
END_TOLERANCE = 0.5


def check_key(key: str, where: str) -> str:
    """A recording/utterance key that is safe as a file name (outputs are ``<key>.rttm``).

    Refused: path separators, ``.`` and ``..``, control characters, the empty key."""
    problem = None
    if not key:
        problem = "is empty"
    elif "/" in key or "\\" in key:
        problem = "contains a path separator"
    elif key in (".", ".."):
        problem = "is a relative directory name"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        problem = "contains a control character"
    if problem:
        raise DataError(
            f"{where}: key {key!r} {problem}; keys become output file names "
            "(use letters, digits, '-', '_', '.')"
        )
    return key


def read_scp(path: str | Path) -> dict[str, str]:
    """``key value`` lines; the value may contain spaces; duplicates are an error.

    Keys must be safe file names (:func:`check_key`): outputs are written per key. A UTF-8
    byte-order mark at the start (Windows editors write one) is dropped, not read as part of
    the first key."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    table: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: expected '<key> <value>', got {line!r}")
        key, value = parts
        check_key(key, f"{path}:{lineno}")
        if key in table:
            raise DataError(f"{path}:{lineno}: duplicate key {key!r}")
        table[key] = value
    return table


def write_text(path: str | Path, text: str, make_parents: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename, see
    :func:`espnet_prune.utils.io.atomic_path`); a write error is one line naming ``path``."""
    from espnet_prune.utils.io import atomic_path

    with atomic_path(path, make_parents=make_parents) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None


def read_uem(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """``recording channel start end`` lines (NIST UEM) → ``{rec: [(start, end), ...]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: UEM file does not exist")
    uem: dict[str, list[tuple[float, float]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if len(fields) != 4:
            raise DataError(
                f"{path}:{lineno}: expected 'recording channel start end', got {line!r}"
            )
        try:
            start, end = float(fields[2]), float(fields[3])
        except ValueError:
            raise DataError(f"{path}:{lineno}: start/end are not numbers: {line!r}") from None
        if not 0 <= start < end:
            raise DataError(f"{path}:{lineno}: need 0 <= start < end, got {start} {end}")
        uem.setdefault(fields[0], []).append((start, end))
    if not uem:
        raise DataError(f"{path}: UEM file is empty")
    return uem


def write_uem(path: str | Path, uem: dict[str, list[tuple[float, float]]]) -> None:
    lines = [f"{rec} 1 {start:.3f} {end:.3f}\n" for rec in sorted(uem) for start, end in uem[rec]]
    write_text(path, "".join(lines))


@dataclass
class DataDir:
    path: Path
    wavs: dict[str, str]
    rttm: dict[str, list[RttmSegment]] = field(default_factory=dict)
    uem: dict[str, list[tuple[float, float]]] | None = None
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def recordings(self) -> list[str]:
        return sorted(self.wavs)


def _resolve_wav(value: str, scp: Path, lineno_of: dict[str, int], key: str) -> str:
    if value.rstrip().endswith("|"):
        raise DataError(
            f"{scp}:{lineno_of[key]}: piped wav.scp commands are not supported; "
            "write 16 kHz mono audio files and list their paths"
        )
    wav = Path(value)
    if not wav.is_absolute() and not wav.exists():
        # Kaldi convention: relative to the recipe directory (cwd); accept relative to data dir too
        candidate = scp.parent / wav
        if candidate.exists():
            return str(candidate)
    return value


def validate_data_dir(
    path: str | Path, sample_rate: int = 16000, require_rttm: bool = True,
    audio_only: bool = False,
) -> DataDir:
    """Read and check a data dir; raises :class:`DataError` naming the file (and line).

    ``audio_only``: read ``wav.scp`` alone; the RTTM and UEM beside it are not opened (data
    for distillation on unlabelled audio, where no annotation may enter)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: data directory does not exist")
    scp = path / "wav.scp"
    wavs = read_scp(scp)
    if not wavs:
        raise DataError(f"{scp}: no recordings listed")
    lineno_of = {}
    for lineno, line in enumerate(scp.read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip():
            lineno_of[line.split()[0]] = lineno
    durations = {}
    for key in list(wavs):
        wavs[key] = _resolve_wav(wavs[key], scp, lineno_of, key)
        try:
            info = check_audio(wavs[key], sample_rate, finite=True)
        except DataError as exc:
            raise DataError(f"{scp}:{lineno_of[key]} ({key}): {exc}") from None
        durations[key] = info.duration

    if audio_only:
        return DataDir(path=path, wavs=wavs, durations=durations)
    rttm_path = path / "rttm"
    rttm: dict[str, list[RttmSegment]] = {}
    if rttm_path.exists():
        rttm = read_rttm(rttm_path)
        for lineno, line in enumerate(rttm_path.read_text(encoding="utf-8-sig").splitlines(), 1):
            fields = line.split()
            if len(fields) < 5 or fields[0] != "SPEAKER":
                continue
            rec = fields[1]
            if rec not in wavs:
                raise DataError(f"{rttm_path}:{lineno}: recording {rec!r} is not in {scp}")
            end = float(fields[3]) + float(fields[4])
            if end > durations[rec] + END_TOLERANCE:
                raise DataError(
                    f"{rttm_path}:{lineno}: segment ends at {end:.3f} s, after the end of "
                    f"{rec!r} ({durations[rec]:.3f} s)"
                )
    elif require_rttm:
        raise DataError(f"{rttm_path}: RTTM file does not exist (needed for training/scoring)")

    uem = None
    uem_path = path / "uem"
    if uem_path.exists():
        uem = read_uem(uem_path)
        for rec, spans in uem.items():
            if rec not in wavs:
                raise DataError(f"{uem_path}: recording {rec!r} is not in {scp}")
            if max(end for _, end in spans) > durations[rec] + END_TOLERANCE:
                raise DataError(f"{uem_path}: UEM of {rec!r} ends after its audio")
    return DataDir(path=path, wavs=wavs, rttm=rttm, uem=uem, durations=durations)


def overlap_statistics(segments) -> tuple[float, float]:
    """(speech seconds, overlapped seconds) of one recording's segments.

    A speaker's own overlapping turns are merged first: overlap means two speakers at once."""
    segments = merge_overlaps(segments)
    events = sorted(
        [(s.start, 1) for s in segments] + [(s.start + s.duration, -1) for s in segments]
    )
    active, last, speech, overlap = 0, 0.0, 0.0, 0.0
    for time, delta in events:
        if active >= 1:
            speech += time - last
        if active >= 2:
            overlap += time - last
        active += delta
        last = time
    return speech, overlap


def format_data_dir(data, output_dir: Path) -> dict:
    """Write the formatted copy of a validated :class:`DataDir`; return its summary."""
    from espnet_prune.utils.io import check_output_dir

    check_output_dir(output_dir)
    recordings = data.recordings
    write_text(output_dir / "wav.scp",
               "".join(f"{rec} {Path(data.wavs[rec]).resolve()}\n" for rec in recordings))
    write_text(output_dir / "reco2dur",
               "".join(f"{rec} {data.durations[rec]:.3f}\n" for rec in recordings))
    if data.uem is not None:
        uem = {rec: data.uem.get(rec, [(0.0, data.durations[rec])]) for rec in recordings}
    else:
        uem = {rec: [(0.0, data.durations[rec])] for rec in recordings}
    write_uem(output_dir / "uem", uem)

    summary = {
        "recordings": len(recordings),
        "hours": round(sum(data.durations.values()) / 3600, 4),
    }
    if data.rttm:
        segments = [seg for rec in recordings for seg in data.rttm.get(rec, [])]
        write_rttm(output_dir / "rttm", segments)
        speech = overlap = 0.0
        for rec in recordings:
            rec_speech, rec_overlap = overlap_statistics(data.rttm.get(rec, []))
            speech += rec_speech
            overlap += rec_overlap
        speakers = {(seg.recording, seg.speaker) for seg in segments}
        summary.update(
            speakers_per_recording=round(len(speakers) / len(recordings), 2),
            speech_fraction=round(speech / max(sum(data.durations.values()), 1e-9), 4),
            overlap_fraction_of_speech=round(overlap / max(speech, 1e-9), 4),
            unlabelled_recordings=sorted(set(recordings) - set(data.rttm)),
        )
    write_text(output_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def validate_and_format(data_dir: str, output_dir: str, sample_rate: int = 16000,
                         require_rttm: bool = True) -> dict:
    """``validate_data``: validate ``data_dir`` and write its formatted copy to ``output_dir``;
    prints and returns the summary."""
    import sys

    from espnet_prune.utils.values import Rule, check_value

    check_value(sample_rate, Rule(int, low=1, high=384000), "validate_data", "--sample_rate")
    data = validate_data_dir(data_dir, sample_rate, require_rttm=require_rttm)
    summary = format_data_dir(data, Path(output_dir))
    print(f"{data_dir} -> {output_dir}: {json.dumps(summary)}")
    sys.stdout.flush()
    return summary
