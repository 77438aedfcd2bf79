"""AMI SDM (Array1-01) + BUT "only_words" references → data/{train,dev,test}.

Reads ``<ami_audio>/<meeting>/audio/<meeting>.Array1-01.wav`` and, from the
AMI-diarization-setup directory, ``only_words/rttms/<split>/<meeting>.rttm`` and
``uems/<split>/<meeting>.uem``. Meetings come from ``--lists`` (train 136 / dev 18 / test 16;
the two without SDM audio listed in ``no_sdm_audio.txt`` are left out).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_prune.corpus.meeting_prep import mono_16k, read_list, setup_logging, write_data_dir
from espnet_prune.errors import DataError
from espnet_prune.utils.cli import run_main
from espnet_prune.utils.datadir import read_uem
from espnet_prune.utils.rttm import RttmSegment, read_rttm

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "dev", "test")
log = logging.getLogger("prepare_ami")


def meeting_annotation(setup: Path, split: str, meeting: str):
    rttm_path = setup / "only_words" / "rttms" / split / f"{meeting}.rttm"
    uem_path = setup / "uems" / split / f"{meeting}.uem"
    segments = read_rttm(rttm_path)  # DataError names the file (missing, malformed, empty)
    if set(segments) != {meeting}:
        raise DataError(f"{rttm_path}: expected turns of {meeting!r} only, found "
                        f"{', '.join(sorted(segments))}")
    uem = read_uem(uem_path)
    if set(uem) != {meeting}:
        raise DataError(f"{uem_path}: expected a UEM of {meeting!r} only, found "
                        f"{', '.join(sorted(uem))}")
    return segments[meeting], uem[meeting]


def prepare_split(args, split: str) -> Path:
    skip_file = args.lists / "no_sdm_audio.txt"
    skip = set(read_list(skip_file)) if skip_file.is_file() else set()
    meetings = [m for m in read_list(args.lists / f"{split}.meetings.txt") if m not in skip]
    if not meetings:
        raise DataError(f"{args.lists / f'{split}.meetings.txt'}: no meetings listed")
    annotations = {m: meeting_annotation(args.setup, split, m) for m in meetings}
    wavs, durations = {}, {}
    for meeting in meetings:
        src = args.ami_audio / meeting / "audio" / f"{meeting}.{args.mic}.wav"
        if not src.is_file():
            raise DataError(f"{src}: meeting audio file does not exist (run local/download_ami.py"
                            " or check AMI in db.sh)")
        converted = args.data / "audio" / "ami" / split / f"{meeting}.wav"
        wavs[meeting], durations[meeting] = mono_16k(src, converted)
    segments: dict[str, list[RttmSegment]] = {m: annotations[m][0] for m in meetings}
    uem = {m: annotations[m][1] for m in meetings}
    return write_data_dir(args.data / f"{args.prefix}{split}", wavs, segments, durations, uem)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ami_audio", type=Path, required=True,
                        help="the amicorpus directory (<meeting>/audio/<meeting>.<mic>.wav)")
    parser.add_argument("--setup", type=Path, required=True,
                        help="AMI-diarization-setup directory (only_words/rttms, uems)")
    parser.add_argument("--lists", type=Path, default=HERE / "ami_splits",
                        help="directory with {train,dev,test}.meetings.txt, no_sdm_audio.txt")
    parser.add_argument("--data", type=Path, default=Path("data"), help="output data dirs root")
    parser.add_argument("--mic", default="Array1-01", help="AMI audio stream (SDM: Array1-01)")
    parser.add_argument("--prefix", default="", help="prefix of the output split names")
    args = parser.parse_args(argv)
    setup_logging()
    for split in SPLITS:
        prepare_split(args, split)
    return 0


if __name__ == "__main__":
    run_main(main)
