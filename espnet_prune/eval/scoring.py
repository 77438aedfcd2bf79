"""DER (missed / false alarm / confusion) and JER, per recording and overall.

Conventions (the reference recipe's scoring and how it differs: ``espnet_prune/FIDELITY.md``,
Scoring):

* Overlapped speech is scored (every reference speaker counts, as md-eval v22 does by default).
* Overlapping segments of the *same* speaker are merged first (in reference and hypothesis):
  pyannote.metrics and md-eval count such self-overlaps differently, and a speaker either speaks
  or does not.
* ``collar`` follows pyannote.metrics: it is the *total* width of the no-score zone centred on
  every reference boundary. md-eval's ``-c`` is the width on *each side*, so md-eval
  ``-c 0.25`` is ``collar=0.5`` here; with ``scorer="md-eval"`` we pass ``-c collar/2``.
* Without a UEM, the scored region of a recording is ``[first start, last end]`` over the
  reference *and* hypothesis segments (pyannote's default). md-eval's own default differs (it
  scores the reference extent only), so we always hand md-eval that same region as an explicit UEM
  and both scorers score the same time.
* JER always comes from pyannote.metrics (md-eval has none); with ``scorer="md-eval"`` only the DER
  components come from md-eval.
* Refused as evidently wrong input (:func:`check_inputs`), rather than scored as a 100 % DER:
  a non-empty hypothesis none of whose recordings is in the reference (wrong file pair or
  renamed recordings), and times that are evidently not seconds. ESPnet's own ``rttm`` data
  type counts *samples*; such a file puts every time 16000× too far. The rule: a hypothesis
  recording ending after ``10 × E + 60`` s, where ``E`` is the end of that recording's reference
  (or its UEM, when larger), is an error; so is a reference recording ending after ``10 × U +
  60`` s of its UEM end ``U``. A file in 16 kHz samples is caught unless its true end lies
  before about 1/1600 of the reference's; output in seconds never comes near the bound.

This module imports no torch and no espnet2: scoring starts in about the time pyannote.metrics
needs to import.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from espnet_prune.errors import DataError
from espnet_prune.utils.rttm import RttmSegment, merge_overlaps, to_annotation

MD_EVAL_PATHS = ("/usr/lib/sctk/bin/md-eval.pl", "/usr/share/sctk/bin/md-eval.pl")
RATE_KEYS = ("der", "miss", "false_alarm", "confusion", "jer")

Uem = Mapping[str, list[tuple[float, float]]]
Turns = Mapping[str, list[RttmSegment]]


@dataclass
class ErrorTimes:
    """Seconds of reference speaker time scored and of each error type."""

    scored: float = 0.0
    miss: float = 0.0
    false_alarm: float = 0.0
    confusion: float = 0.0

    def __iadd__(self, other: ErrorTimes) -> ErrorTimes:
        self.scored += other.scored
        self.miss += other.miss
        self.false_alarm += other.false_alarm
        self.confusion += other.confusion
        return self

    def rates(self) -> dict[str, float | None]:
        """Fractions of the scored speaker time; ``None`` when nothing was scored."""
        error = self.miss + self.false_alarm + self.confusion
        if self.scored <= 0:
            zero = 0.0 if error == 0 else None
            return {"der": zero, "miss": zero, "false_alarm": zero, "confusion": zero}
        return {
            "der": error / self.scored,
            "miss": self.miss / self.scored,
            "false_alarm": self.false_alarm / self.scored,
            "confusion": self.confusion / self.scored,
        }


def merge_speaker_overlaps(turns: Turns) -> dict[str, list[RttmSegment]]:
    """Union of each speaker's segments per recording (a speaker is active or not)."""
    merged = {}
    for rec, segments in turns.items():
        merged[rec] = sorted(merge_overlaps(segments), key=lambda s: (s.start, s.speaker))
    return merged


def find_md_eval() -> str | None:
    """Path of md-eval.pl (Debian/Ubuntu package ``sctk``) or ``None``."""
    for path in MD_EVAL_PATHS:
        if Path(path).is_file():
            return path
    return shutil.which("md-eval.pl")


def default_uem(reference: Turns, hypothesis: Turns) -> dict[str, list[tuple[float, float]]]:
    """Per recording ``[first start, last end]`` of reference and hypothesis together."""
    uem = {}
    for rec, turns in reference.items():
        both = list(turns) + list(hypothesis.get(rec, []))
        uem[rec] = [(min(s.start for s in both), max(s.end for s in both))]
    return uem


UNITS_FACTOR = 10.0  # see check_inputs: ends beyond FACTOR × extent + SLACK are not seconds
UNITS_SLACK = 60.0


def _names(recordings, limit: int = 3) -> str:
    shown = ", ".join(sorted(recordings)[:limit])
    return shown + (" ..." if len(recordings) > limit else "")


def check_inputs(
    reference: Turns,
    hypothesis: Turns,
    uem: Uem | None = None,
    ref_name: str = "reference",
    hyp_name: str = "hypothesis",
) -> None:
    """Refuse inputs whose score would be meaningless (see the module docstring); the
    one-line DataError names the file (``ref_name`` / ``hyp_name``) and the recording."""
    spoken = [rec for rec, turns in hypothesis.items() if turns]
    if spoken and not set(spoken) & set(reference):
        raise DataError(
            f"{hyp_name}: none of its {len(spoken)} recording(s) ({_names(spoken)}) is in "
            f"{ref_name} ({_names(reference)}): a wrong file pair, or the recording names differ"
        )
    uem = uem or {}
    for rec in sorted(reference):
        turns = reference[rec]
        if not turns:
            continue
        ref_end = max(seg.end for seg in turns)
        uem_end = max((end for _, end in uem.get(rec, [])), default=None)
        if uem_end is not None and ref_end > UNITS_FACTOR * uem_end + UNITS_SLACK:
            raise DataError(
                f"{ref_name}: recording {rec!r} ends at {ref_end:.3f} s, its UEM at "
                f"{uem_end:.3f} s: the times look like samples, not seconds"
            )
        hyp_turns = hypothesis.get(rec, [])
        if not hyp_turns:
            continue
        extent = max(ref_end, uem_end or 0.0)
        hyp_end = max(seg.end for seg in hyp_turns)
        if hyp_end > UNITS_FACTOR * extent + UNITS_SLACK:
            raise DataError(
                f"{hyp_name}: recording {rec!r} ends at {hyp_end:.3f} s, its reference at "
                f"{extent:.3f} s: the times look like samples, not seconds (ESPnet's 'rttm' "
                "data type counts samples; write standard RTTM in seconds)"
            )


def _check_recordings(reference: Turns, hypothesis: Turns, uem: Uem | None) -> list[str]:
    recordings = sorted(reference)
    if not recordings:
        raise DataError("reference RTTM has no recordings")
    extra = sorted(set(hypothesis) - set(reference))
    if extra:
        warnings.warn(
            f"hypothesis recordings without reference are not scored: {', '.join(extra[:5])}"
            + (" ..." if len(extra) > 5 else ""),
            stacklevel=3,
        )
    if uem is not None:
        missing = [rec for rec in recordings if rec not in uem]
        if missing:
            raise DataError(
                f"UEM has no entry for reference recording(s) {', '.join(missing[:5])}"
            )
    return recordings


def score_pyannote(
    reference: Turns, hypothesis: Turns, uem: Uem | None = None, collar: float = 0.0
) -> tuple[dict[str, ErrorTimes], dict[str, float], float]:
    """Error times per recording, JER per recording and overall JER, with pyannote.metrics."""
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    recordings = _check_recordings(reference, hypothesis, uem)
    if uem is None:
        uem = default_uem(reference, hypothesis)
    der_metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    jer_metric = JaccardErrorRate(collar=collar, skip_overlap=False)
    times: dict[str, ErrorTimes] = {}
    jers: dict[str, float] = {}
    for rec in recordings:
        ref = to_annotation(reference[rec], uri=rec)
        hyp = to_annotation(hypothesis.get(rec, []), uri=rec)
        timeline = Timeline([Segment(s, e) for s, e in uem[rec]], uri=rec)
        detail = der_metric(ref, hyp, uem=timeline, detailed=True)
        times[rec] = ErrorTimes(
            scored=detail["total"],
            miss=detail["missed detection"],
            false_alarm=detail["false alarm"],
            confusion=detail["confusion"],
        )
        jers[rec] = jer_metric(ref, hyp, uem=timeline)
    return times, jers, abs(jer_metric)


_SECTION = re.compile(r"\*\*\* Performance analysis for Speaker Diarization for (.+?) \*\*\*")
_FIELDS = {
    "scored": r"SCORED SPEAKER TIME =\s*([\d.]+)",
    "miss": r"MISSED SPEAKER TIME =\s*([\d.]+)",
    "false_alarm": r"FALARM SPEAKER TIME =\s*([\d.]+)",
    "confusion": r"SPEAKER ERROR TIME =\s*([\d.]+)",
}
_DER_LINE = re.compile(r"OVERALL SPEAKER DIARIZATION ERROR =\s*([\d.]+) percent")


def _write_md_eval_inputs(
    folder: Path, reference: Turns, hypothesis: Turns, uem: Uem, recordings: list[str]
) -> tuple[Path, Path, Path]:
    def rttm_lines(turns: Turns) -> list[str]:
        return [
            f"SPEAKER {rec} 1 {seg.start:.6f} {seg.duration:.6f} <NA> <NA> {seg.speaker} <NA> <NA>"
            for rec in recordings
            for seg in turns.get(rec, [])
        ]

    paths = folder / "ref.rttm", folder / "hyp.rttm", folder / "all.uem"
    paths[0].write_text("\n".join(rttm_lines(reference)) + "\n", encoding="utf-8")
    paths[1].write_text("\n".join(rttm_lines(hypothesis)) + "\n", encoding="utf-8")
    uem_lines = [f"{rec} 1 {s:.6f} {e:.6f}" for rec in recordings for s, e in uem[rec]]
    paths[2].write_text("\n".join(uem_lines) + "\n", encoding="utf-8")
    return paths


def run_md_eval(
    reference: Turns,
    hypothesis: Turns,
    uem: Uem | None = None,
    collar: float = 0.0,
    md_eval: str | None = None,
) -> tuple[dict[str, ErrorTimes], dict[str, float]]:
    """Error times per recording (key ``"ALL"`` = overall) and md-eval's printed DER fractions.

    ``collar`` is pyannote's total width; md-eval receives ``-c collar/2``. md-eval prints
    seconds with 2 decimals and DER in percent with 2 decimals, so its numbers carry that rounding.
    """
    md_eval = md_eval or find_md_eval()
    if md_eval is None:
        raise DataError(
            "md-eval.pl not found (install the Debian/Ubuntu package 'sctk', which provides "
            f"{MD_EVAL_PATHS[0]})"
        )
    recordings = _check_recordings(reference, hypothesis, uem)
    if uem is None:
        uem = default_uem(reference, hypothesis)
    with tempfile.TemporaryDirectory(prefix="md_eval_") as tmp:
        ref_path, hyp_path, uem_path = _write_md_eval_inputs(
            Path(tmp), reference, hypothesis, uem, recordings
        )
        command = ["perl", md_eval, "-c", f"{collar / 2:g}", "-af", "-r", str(ref_path)]
        command += ["-s", str(hyp_path), "-u", str(uem_path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or "OVERALL SPEAKER DIARIZATION ERROR" not in result.stdout:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise DataError(f"{md_eval} failed (status {result.returncode}): {' | '.join(tail)}")
    times: dict[str, ErrorTimes] = {}
    ders: dict[str, float] = {}
    sections = _SECTION.split(result.stdout)
    for label, body in zip(sections[1::2], sections[2::2]):
        match = re.search(r"f=(\S+)", label)
        key = match.group(1) if match else "ALL"
        values = {}
        for name, pattern in _FIELDS.items():
            found = re.search(pattern, body)
            values[name] = float(found.group(1)) if found else 0.0
        times[key] = ErrorTimes(**values)
        der = _DER_LINE.search(body)
        if der:
            ders[key] = float(der.group(1)) / 100
    return times, ders


def score(
    reference: Turns,
    hypothesis: Turns,
    uem: Uem | None = None,
    collar: float = 0.0,
    scorer: str = "pyannote",
    ref_name: str = "reference",
    hyp_name: str = "hypothesis",
) -> dict:
    """Scores in the ``diar_score --json`` schema (fractions, 0.153 = 15.3 %).

    ``ref_name`` / ``hyp_name`` (the file names) are used in the messages of refused input.
    """
    from espnet_prune.utils.values import Rule, check_value

    check_value(collar, Rule(float, low=0.0), "diar_score", "--collar")  # NaN, inf, < 0
    check_inputs(reference, hypothesis, uem, ref_name, hyp_name)
    reference, hypothesis = merge_speaker_overlaps(reference), merge_speaker_overlaps(hypothesis)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*approximated by the union.*")
        times, jers, overall_jer = score_pyannote(reference, hypothesis, uem, collar)
    md_ders: dict[str, float] = {}
    if scorer == "md-eval":
        md_times, md_ders = run_md_eval(reference, hypothesis, uem, collar)
        missing = [rec for rec in times if rec not in md_times]
        if missing:
            raise DataError(f"md-eval output has no section for {', '.join(missing[:5])}")
        times = {rec: md_times[rec] for rec in times}
    elif scorer != "pyannote":
        raise DataError(f"unknown scorer {scorer!r} (choose 'pyannote' or 'md-eval')")
    if collar > 0:
        check_collar(times, reference, collar)
    total = ErrorTimes()
    per_recording = {}
    for rec, rec_times in times.items():
        total += rec_times
        per_recording[rec] = {**rec_times.rates(), "jer": jers[rec]}
        if rec in md_ders:
            per_recording[rec]["der"] = md_ders[rec]
    overall = {**total.rates(), "jer": overall_jer}
    if scorer == "md-eval" and "ALL" in md_times:
        # md-eval's own sums; its DER line (2 decimals in %) is more precise than its seconds
        overall = {**md_times["ALL"].rates(), "jer": overall_jer}
        overall["der"] = md_ders.get("ALL", overall["der"])
    return {"overall": overall, "per_recording": per_recording}


def check_collar(times: dict[str, ErrorTimes], reference: Turns, collar: float) -> None:
    """DataError when the collar leaves nothing of a recording's reference speech to score: its
    DER would print as 0.00 % (or be undefined), a result that measures nothing."""
    unscored = [rec for rec, rec_times in times.items()
                if rec_times.scored <= 0 and any(s.duration > 0 for s in reference.get(rec, []))]
    if unscored:
        raise DataError(
            f"collar {collar:g} s leaves no reference speech to score in {_names(unscored)} "
            "(every reference turn lies within collar/2 of a boundary); use a narrower collar "
            "(md-eval -c 0.25 is --collar 0.5)")


def format_table(scores: dict) -> str:
    """Plain-text table in percent, one row per recording and a final OVERALL row."""
    header = f"{'recording':<24} {'DER%':>7} {'miss%':>7} {'FA%':>7} {'conf%':>7} {'JER%':>7}"
    lines = [header, "-" * len(header)]

    def row(name: str, rates: dict) -> str:
        cells = ["-" if rates[k] is None else f"{100 * rates[k]:.2f}" for k in RATE_KEYS]
        return f"{name:<24} " + " ".join(f"{cell:>7}" for cell in cells)

    for rec, rates in scores["per_recording"].items():
        lines.append(row(rec, rates))
    lines.append("-" * len(header))
    lines.append(row("OVERALL", scores["overall"]))
    return "\n".join(lines)


def score_files(ref: str, hyp: str, uem: str | None = None, collar: float = 0.0,
                scorer: str = "pyannote", json_path: str | None = None) -> dict:
    """``diar_score``: score the RTTM files, print the table and write ``json_path``
    (atomically, checked before scoring) when given."""
    import sys

    from espnet_prune.utils.datadir import read_uem, write_text
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.utils.rttm import read_rttm

    if json_path:
        check_output_file(json_path, make_parents=True)  # fail before scoring, not after
    reference = read_rttm(ref)
    hypothesis = read_rttm(hyp, allow_empty=True)
    scores = score(reference, hypothesis, uem=read_uem(uem) if uem else None, collar=collar,
                   scorer=scorer, ref_name=ref, hyp_name=hyp)
    region = "UEM " + uem if uem else "first-to-last segment of ref+hyp (no UEM)"
    print(f"# scorer={scorer} collar={collar:g}s (total width) region={region}")
    print(format_table(scores))
    if json_path:
        write_text(json_path, json.dumps(scores, indent=2) + "\n", make_parents=True)
    sys.stdout.flush()
    return scores
