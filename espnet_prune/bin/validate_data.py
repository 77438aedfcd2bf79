"""Check a Kaldi-style diarization data dir and write its formatted copy (recipe stage 2).

Catching a missing wav, a wrong sample rate, NaN/inf samples, an unsafe recording key or an
RTTM line past the end of the audio here takes seconds; inside training it would surface hours
later. The formatted copy has absolute
wav paths, a sorted RTTM, a UEM (whole recordings when the source has none) and ``reco2dur``,
so that the later stages do not depend on the working directory or on optional files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from espnet_prune.utils.cli import run_main


def str2bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", help="source data dir (wav.scp, rttm, optional uem)")
    parser.add_argument("output_dir", help="where the formatted copy is written")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument(
        "--require_rttm", type=str2bool, default=True, help="false for unlabelled test data"
    )
    return parser


def overlap_statistics(segments) -> tuple[float, float]:
    """(speech seconds, overlapped seconds) of one recording's segments.

    A speaker's own overlapping turns are merged first: overlap means two speakers at once."""
    from espnet_prune.utils.rttm import merge_overlaps

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
    from espnet_prune.utils.datadir import write_text, write_uem
    from espnet_prune.utils.io import check_output_dir
    from espnet_prune.utils.rttm import write_rttm

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


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.utils.datadir import validate_data_dir

    data = validate_data_dir(args.data_dir, args.sample_rate, require_rttm=args.require_rttm)
    summary = format_data_dir(data, Path(args.output_dir))
    print(f"{args.data_dir} -> {args.output_dir}: {json.dumps(summary)}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    run_main(main)
