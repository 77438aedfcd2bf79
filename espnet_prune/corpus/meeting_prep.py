"""Shared pieces of the meeting-corpus data preps (AISHELL-4, AliMeeting, AMI).

Praat TextGrid reading, first-channel extraction to 16 kHz mono and writing Kaldi-style
diarization data dirs (``wav.scp``, ``rttm``, ``uem``), for the recipes' ``local/prepare_*.py``.
"""

from __future__ import annotations

import argparse
import bisect
import logging
import math
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet_prune.errors import DataError
from espnet_prune.utils.datadir import END_TOLERANCE, write_text, write_uem
from espnet_prune.utils.rttm import RttmSegment, write_rttm

log = logging.getLogger("meeting_prep")

SAMPLE_RATE = 16000
# Praat stores times as decimals; two intervals "touch" when they differ by less than this.
TIME_EPS = 1e-6


# --------------------------------------------------------------------------- TextGrid


@dataclass
class Interval:
    start: float
    end: float
    text: str
    line: int


@dataclass
class Tier:
    name: str
    kind: str  # "IntervalTier" or "TextTier"
    line: int
    intervals: list[Interval] = field(default_factory=list)


# Praat's text formats (long and short) are the same stream of strings, numbers and flags;
# the long one adds labels ("xmin =", "item [1]:") that carry no data.
_TOKEN = re.compile(
    r'"(?P<str>(?:[^"]|"")*)"'
    r"|(?P<index>\[[^\]\n]*\])"
    r"|(?P<flag><exists>|<absent>)"
    r"|(?P<comment>![^\n]*)"
    r"|(?<![A-Za-z_])(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
)


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return raw.decode("utf-16")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path}: TextGrid is neither UTF-8/UTF-16 nor GB18030 text")


class _Tokens:
    def __init__(self, path: Path, text: str):
        self.path = path
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.items: list[tuple[str, str, int]] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind in ("index", "comment"):
                continue
            value = match.group(kind)
            if kind == "str":
                value = value.replace('""', '"')
            line = bisect.bisect_right(self.line_starts, match.start())
            self.items.append((kind, value, line))
        self.pos = 0

    @property
    def line(self) -> int:
        if self.pos < len(self.items):
            return self.items[self.pos][2]
        return len(self.line_starts)

    def _next(self, kind: str, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise DataError(f"{self.path}: TextGrid ends early (expected {what})")
        got_kind, value, line = self.items[self.pos]
        if got_kind != kind:
            raise DataError(f"{self.path}:{line}: expected {what}, found {value!r}")
        self.pos += 1
        return value, line

    def string(self, what: str) -> tuple[str, int]:
        return self._next("str", what)

    def number(self, what: str) -> float:
        value, line = self._next("num", what)
        number = float(value)
        if not math.isfinite(number):
            raise DataError(f"{self.path}:{line}: {what} is not finite")
        return number

    def count(self, what: str) -> int:
        number = self.number(what)
        if number < 0 or number != int(number):
            raise DataError(f"{self.path}:{self.items[self.pos - 1][2]}: bad {what} {number}")
        return int(number)

    def flag(self) -> bool:
        if self.pos < len(self.items) and self.items[self.pos][0] == "flag":
            self.pos += 1
            return self.items[self.pos - 1][1] == "<exists>"
        return True  # some writers leave the flag out


def read_textgrid(path: str | Path) -> list[Tier]:
    """Tiers of a Praat TextGrid (text format, long or short; UTF-8/UTF-16/GB18030)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: TextGrid file does not exist")
    raw = path.read_bytes()
    if raw.startswith(b"ooBinaryFile"):
        raise DataError(f"{path}: binary TextGrid files are not supported; save it as text")
    tokens = _Tokens(path, _decode(path, raw))
    if not tokens.items:
        raise DataError(f"{path}: TextGrid file is empty")
    file_type, _ = tokens.string('"ooTextFile"')
    object_class, line = tokens.string('"TextGrid"')
    if file_type != "ooTextFile" or not object_class.startswith("TextGrid"):
        raise DataError(
            f"{path}:{line}: not a Praat TextGrid (header {file_type!r}, {object_class!r})"
        )
    tokens.number("xmin")
    tokens.number("xmax")
    tiers: list[Tier] = []
    if not tokens.flag():
        return tiers
    for _ in range(tokens.count("number of tiers")):
        kind, line = tokens.string("tier class")
        name, _ = tokens.string("tier name")
        tier = Tier(name=name, kind=kind, line=line)
        tokens.number("tier xmin")
        tokens.number("tier xmax")  # may differ from the file's xmax (seen in AISHELL-4)
        size = tokens.count("number of intervals")
        if kind == "IntervalTier":
            for _ in range(size):
                start_line = tokens.line
                start = tokens.number("interval xmin")
                end = tokens.number("interval xmax")
                text, _ = tokens.string("interval text")
                tier.intervals.append(Interval(start, end, text, start_line))
        elif kind == "TextTier":
            for _ in range(size):
                tokens.number("point time")
                tokens.string("point mark")
        else:
            raise DataError(f"{path}:{line}: unknown tier class {kind!r}")
        tiers.append(tier)
    return tiers


def _speaker_name(name: str, index: int) -> str:
    name = re.sub(r"\s+", "_", name.strip())
    return name or f"tier{index}"


def textgrid_speech(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Speech turns per speaker: non-empty intervals of each interval tier, touching ones merged.

    Each interval tier is one speaker. Intervals of one tier that overlap (or run backwards)
    make the annotation ambiguous and are an error; so is a file without any speech.
    """
    path = Path(path)
    turns: dict[str, list[tuple[float, float]]] = {}
    for index, tier in enumerate(read_textgrid(path), 1):
        if tier.kind != "IntervalTier":
            continue
        speaker = _speaker_name(tier.name, index)
        latest_end = -math.inf
        previous = None
        spans: list[tuple[float, float]] = []
        for interval in tier.intervals:
            if interval.end < interval.start:
                raise DataError(
                    f"{path}:{interval.line}: tier {tier.name!r}: interval ends "
                    f"({interval.end}) before it starts ({interval.start})"
                )
            if interval.start < latest_end - TIME_EPS:
                raise DataError(
                    f"{path}:{interval.line}: tier {tier.name!r}: interval "
                    f"[{interval.start}, {interval.end}] overlaps the earlier interval "
                    f"[{previous.start}, {previous.end}] (line {previous.line}) of the same "
                    "speaker"
                )
            if interval.end > latest_end:
                latest_end, previous = interval.end, interval
            if not interval.text.strip() or interval.end - interval.start <= TIME_EPS:
                continue
            if spans and interval.start - spans[-1][1] <= TIME_EPS:
                spans[-1] = (spans[-1][0], interval.end)
            else:
                spans.append((interval.start, interval.end))
        if not spans:
            continue
        if speaker in turns:  # two tiers with one name: one speaker, union of the turns
            log.warning("%s: tier name %r appears twice; merging its turns", path, tier.name)
            spans = _union(turns[speaker] + spans)
        turns[speaker] = spans
    if not turns:
        raise DataError(f"{path}: empty annotation (no interval tier has any speech)")
    return turns


def _union(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + TIME_EPS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def turns_to_segments(recording: str, turns: dict[str, list[tuple[float, float]]]):
    return [
        RttmSegment(recording, start, end - start, speaker)
        for speaker, spans in turns.items()
        for start, end in spans
    ]


# --------------------------------------------------------------------------- audio


def _audio_info(src: Path):
    """soundfile's header of a meeting recording; DataError naming it when absent, unreadable or
    truncated (shorter than its header says: :func:`espnet_prune.utils.audio.check_complete`)."""
    from espnet_prune.utils.audio import check_complete

    if not src.is_file():
        raise DataError(f"{src}: meeting audio file does not exist")
    try:
        info = sf.info(str(src))
    except Exception as exc:
        raise DataError(f"{src}: cannot read audio ({exc})") from None
    stat = src.stat()
    check_complete(str(src), stat.st_size, stat.st_mtime_ns, info.format, int(info.frames))
    return info


def _expected_frames(frames: int, rate_in: int, rate_out: int) -> int:
    return int(math.ceil(frames * rate_out / rate_in))


def extract_channel(
    src: str | Path, dst: str | Path, channel: int = 0, sample_rate: int = SAMPLE_RATE
) -> float:
    """Write channel ``channel`` of ``src`` to ``dst`` as 16-bit mono at ``sample_rate``.

    Returns the duration in seconds. An existing ``dst`` of the right length is kept, so an
    interrupted prep resumes; files are written under a temporary name and renamed when done.
    """
    src, dst = Path(src), Path(dst)
    info = _audio_info(src)
    if info.frames == 0:
        raise DataError(f"{src}: audio file is empty")
    if channel >= info.channels:
        raise DataError(f"{src}: has {info.channels} channel(s); channel {channel} requested")
    frames_out = _expected_frames(info.frames, info.samplerate, sample_rate)
    if dst.is_file():
        try:
            done = sf.info(str(dst))
            if (done.frames, done.samplerate, done.channels) == (frames_out, sample_rate, 1):
                return frames_out / sample_rate
        except Exception:
            pass
        log.info("%s: incomplete or stale, rewriting", dst)
    pieces = []
    try:
        for block in sf.blocks(str(src), blocksize=60 * info.samplerate, always_2d=True,
                               dtype="float32"):
            pieces.append(block[:, channel].copy())
    except Exception as exc:
        raise DataError(f"{src}: cannot read audio ({exc})") from None
    audio = np.concatenate(pieces)
    if info.samplerate != sample_rate:
        from scipy.signal import resample_poly

        common = math.gcd(info.samplerate, sample_rate)
        audio = resample_poly(audio, sample_rate // common, info.samplerate // common)
        audio = audio[:frames_out].astype(np.float32)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, dst)
    return len(audio) / sample_rate


def mono_16k(src: str | Path, converted: str | Path) -> tuple[Path, float]:
    """``src`` itself when already 16 kHz mono, else its first channel written to ``converted``."""
    src = Path(src)
    info = _audio_info(src)
    if info.channels == 1 and info.samplerate == SAMPLE_RATE:
        if info.frames == 0:
            raise DataError(f"{src}: audio file is empty")
        return src, info.frames / SAMPLE_RATE
    return Path(converted), extract_channel(src, converted)


def _extract_job(job: tuple[str, str, int]) -> float:
    src, dst, channel = job
    return extract_channel(src, dst, channel)


def extract_all(jobs: dict[str, tuple[Path, Path]], channel: int = 0, nj: int = 1):
    """``{rec: (src, dst)}`` → ``{rec: duration}``; channel extraction in ``nj`` processes."""
    ordered = sorted(jobs)
    args = [(str(jobs[r][0]), str(jobs[r][1]), channel) for r in ordered]
    if nj <= 1 or len(args) <= 1:
        durations = [_extract_job(a) for a in args]
    else:
        with ProcessPoolExecutor(max_workers=nj) as pool:
            durations = list(pool.map(_extract_job, args))
    return dict(zip(ordered, durations))


# --------------------------------------------------------------------------- data dirs


def write_data_dir(
    out_dir: str | Path,
    wavs: dict[str, Path],
    segments: dict[str, list[RttmSegment]],
    durations: dict[str, float],
    uem: dict[str, list[tuple[float, float]]] | None = None,
) -> Path:
    """Write ``wav.scp`` (absolute paths), ``rttm`` and ``uem`` (whole recording by default).

    Turns and UEM spans are cut at the end of the audio: corpus annotations sometimes run a
    little past it (a warning is logged when that is more than the validator's tolerance).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = sorted(set(wavs) - set(segments))
    if missing:
        raise DataError(f"{out_dir}: no annotation for recording(s) {', '.join(missing)}")
    all_segments = []
    spans_out: dict[str, list[tuple[float, float]]] = {}
    for rec in sorted(wavs):
        duration = durations[rec]
        for seg in segments[rec]:
            end = min(seg.end, duration)
            if seg.end - duration > END_TOLERANCE:
                log.warning("%s: turn %.3f-%.3f s cut at the audio end %.3f s",
                            rec, seg.start, seg.end, duration)
            if end - seg.start > TIME_EPS:
                all_segments.append(RttmSegment(rec, seg.start, end - seg.start, seg.speaker))
        spans = uem.get(rec) if uem else None
        if spans is None:
            spans = [(0.0, duration)]
        kept = []
        for start, end in spans:
            if end - duration > END_TOLERANCE:
                log.warning("%s: UEM end %.3f s cut at the audio end %.3f s", rec, end, duration)
            end = min(end, duration)
            if end > start:
                kept.append((start, end))
        spans_out[rec] = kept
    write_text(out_dir / "wav.scp",
               "".join(f"{rec} {Path(wavs[rec]).resolve()}\n" for rec in sorted(wavs)))
    write_rttm(out_dir / "rttm", all_segments)
    write_uem(out_dir / "uem", spans_out)
    log.info("%s: %d recordings, %.2f h, %d turns", out_dir, len(wavs),
             sum(durations[r] for r in wavs) / 3600, len(all_segments))
    return out_dir


def read_list(path: str | Path) -> list[str]:
    """One id per line (blank lines and ``#`` comments ignored; a UTF-8 byte-order mark at the
    start dropped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: list file does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    items = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [item for item in items if item]


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def read_split_annotations(
    sessions: dict[str, tuple[Path, Path]],
) -> dict[str, list[RttmSegment]]:
    """RTTM segments of ``{recording: (audio, TextGrid)}`` after checking every audio exists;
    cheap, so that a bad file fails before hours of audio work."""
    for rec, (audio, _) in sorted(sessions.items()):
        if not Path(audio).is_file():
            raise DataError(f"{audio}: meeting audio file does not exist (recording {rec})")
    return {
        rec: turns_to_segments(rec, textgrid_speech(textgrid))
        for rec, (_, textgrid) in sorted(sessions.items())
    }


def prepare_textgrid_split(
    out_dir: str | Path,
    sessions: dict[str, tuple[Path, Path]],
    audio_dir: str | Path,
    segments: dict[str, list[RttmSegment]] | None = None,
    channel: int = 0,
    nj: int = 1,
) -> Path:
    """Data dir of ``{recording: (multi-channel audio, TextGrid)}`` with first-channel audio."""
    if not sessions:
        raise DataError(f"{out_dir}: no sessions found for this split")
    if segments is None:
        segments = read_split_annotations(sessions)
    jobs = {rec: (audio, Path(audio_dir) / f"{rec}.wav") for rec, (audio, _) in sessions.items()}
    durations = extract_all(jobs, channel=channel, nj=nj)
    wavs = {rec: dst for rec, (_, dst) in jobs.items()}
    return write_data_dir(out_dir, wavs, segments, durations)


def true_or_false(value: str) -> bool:
    """``true``/``false`` as the shell recipes write them."""
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value == "true"


def prepare_textgrid_splits(
    data: str | Path,
    prefix: str,
    splits: dict[str, dict[str, tuple[Path, Path]]],
    audio_dir: str | Path,
    nj: int = 1,
) -> None:
    """Data dirs ``data/<prefix><split>`` of ``{split: {recording: (audio, TextGrid)}}``.

    Every split's annotations are read before any audio is extracted, so that a bad TextGrid
    anywhere fails in seconds, not after hours of audio work.
    """
    annotations = {name: read_split_annotations(s) for name, s in splits.items()}
    for name, sessions in splits.items():
        prepare_textgrid_split(Path(data) / f"{prefix}{name}", sessions, Path(audio_dir) / name,
                               annotations[name], nj=nj)


def textgrid_prep_parser(description: str, corpus: str, url: str) -> argparse.ArgumentParser:
    """Command line of a TextGrid corpus prep: ``--corpus --download --url --data --audio_dir
    --prefix --nj`` (local/data.sh passes its options on to it)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--corpus", type=Path, required=True, help=f"{corpus} root directory")
    parser.add_argument("--download", type=true_or_false, default=False,
                        help="true: first fetch and extract the corpus archives into --corpus "
                        "unless CORPUS/.complete exists (local/data.sh: true)")
    parser.add_argument("--url", default=url, help="base URL of the archives (a mirror)")
    parser.add_argument("--data", type=Path, default=Path("data"), help="output data dirs root")
    parser.add_argument("--audio_dir", type=Path, default=None,
                        help="where the 16 kHz mono first-channel wavs go (default DATA/audio)")
    parser.add_argument("--prefix", default="", help="prefix of the output split names")
    parser.add_argument("--nj", type=int, default=4, help="parallel audio extraction jobs")
    return parser
