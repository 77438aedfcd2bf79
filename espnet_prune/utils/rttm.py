"""Standard NIST RTTM (times in seconds), as corpora ship it.

ESPnet's own ``espnet2.fileio.rttm`` reads a sample-based variant with END lines; this module
reads the standard one and reports problems with the file name and line number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from espnet_prune.errors import ConfigError, DataError


class RttmSegment(NamedTuple):
    recording: str
    start: float
    duration: float
    speaker: str

    @property
    def end(self) -> float:
        return self.start + self.duration


def _parse_time(value: str, what: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise DataError(f"{where}: {what} {value!r} must be a finite number >= 0")
    return number


def parse_rttm_lines(lines: Iterable[str], source: str = "<rttm>") -> dict[str, list[RttmSegment]]:
    segments: dict[str, list[RttmSegment]] = {}
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        where = f"{source}:{lineno}"
        if fields[0] != "SPEAKER":
            if fields[0].isupper() and len(fields) >= 2:
                continue  # other RTTM types (SPKR-INFO, LEXEME, END ...) carry no turns
            raise DataError(f"{where}: expected an RTTM line starting with SPEAKER, got {line!r}")
        if len(fields) < 8:
            raise DataError(
                f"{where}: SPEAKER line needs at least 8 fields "
                f"(SPEAKER file chnl tbeg tdur ortho stype name ...), got {len(fields)}"
            )
        start = _parse_time(fields[3], "start time", where)
        duration = _parse_time(fields[4], "duration", where)
        if duration == 0:
            continue
        segments.setdefault(fields[1], []).append(
            RttmSegment(fields[1], start, duration, fields[7])
        )
    return segments


def read_rttm(path: str | Path, allow_empty: bool = False) -> dict[str, list[RttmSegment]]:
    """Read an RTTM file into ``{recording: [segments sorted by start]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: RTTM file does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    segments = parse_rttm_lines(text.splitlines(), str(path))
    if not segments and not allow_empty:
        raise DataError(f"{path}: RTTM file has no SPEAKER segments")
    for turns in segments.values():
        turns.sort(key=lambda s: (s.start, s.speaker))
    return segments


def format_rttm_line(seg: RttmSegment) -> str:
    return (
        f"SPEAKER {seg.recording} 1 {seg.start:.3f} {seg.duration:.3f} "
        f"<NA> <NA> {seg.speaker} <NA> <NA>"
    )


def write_rttm(path: str | Path, segments: Iterable[RttmSegment]) -> None:
    """Write segments (any order) as standard RTTM, sorted by recording and start.

    Written through :func:`espnet_prune.utils.io.atomic_path`: a failed or interrupted write
    (a full disk) leaves no file under ``path`` that could pass for "no speech"; write errors
    are a one-line ConfigError naming ``path``.
    """
    from espnet_prune.utils.io import atomic_path

    ordered = sorted(segments, key=lambda s: (s.recording, s.start, s.speaker))
    with atomic_path(path, make_parents=True) as tmp:
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for seg in ordered:
                    fh.write(format_rttm_line(seg) + "\n")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None


def merge_overlaps(segments: Iterable[RttmSegment]) -> list[RttmSegment]:
    """Union of each (recording, speaker)'s segments, sorted by (recording, start, speaker).

    A speaker either speaks or does not: two overlapping (or touching) turns of the same
    speaker become one, so that speech/overlap statistics and scores do not count a speaker
    overlapping itself.
    """
    by_speaker: dict[tuple[str, str], list[RttmSegment]] = {}
    for seg in segments:
        by_speaker.setdefault((seg.recording, seg.speaker), []).append(seg)
    out: list[RttmSegment] = []
    for (rec, speaker), own in by_speaker.items():
        own.sort(key=lambda s: s.start)
        start, end = own[0].start, own[0].end
        for seg in own[1:]:
            if seg.start <= end:
                end = max(end, seg.end)
            else:
                out.append(RttmSegment(rec, start, end - start, speaker))
                start, end = seg.start, seg.end
        out.append(RttmSegment(rec, start, end - start, speaker))
    return sorted(out, key=lambda s: (s.recording, s.start, s.speaker))


def to_annotation(segments: Iterable[RttmSegment], uri: str | None = None):
    """pyannote.core Annotation of the segments (pyannote imported lazily)."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, seg in enumerate(segments):
        annotation[Segment(seg.start, seg.end), i] = seg.speaker
    return annotation
