"""Download AMI SDM audio (Array1-01) and the BUT AMI-diarization-setup annotations.

Layout written under ``--ami`` (the ``AMI`` directory of db.sh):
``amicorpus/<meeting>/audio/<meeting>.Array1-01.wav`` and ``AMI-diarization-setup/`` with
``only_words/rttms/<split>/<meeting>.rttm``, ``uems/<split>/<meeting>.uem`` and ``lists/``.
Re-running resumes; files missing or truncated at the end are named and the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from espnet_prune.corpus.download import download_all
from espnet_prune.corpus.meeting_prep import read_list
from espnet_prune.utils.cli import run_main

HERE = Path(__file__).resolve().parent
AMI_MIRROR = "https://groups.inf.ed.ac.uk/ami/AMICorpusMirror/amicorpus"
# BUTSpeechFIT/AMI-diarization-setup at a fixed commit, so the references never move.
SETUP_URL = (
    "https://raw.githubusercontent.com/BUTSpeechFIT/AMI-diarization-setup/"
    "2509d8933721023fab4def2618aabd5c28eb82e9"
)
SPLITS = ("train", "dev", "test")
log = logging.getLogger("download_ami")


def ami_items(
    ami: Path, lists_dir: Path = HERE / "ami_splits", mirror: str = AMI_MIRROR,
    setup_url: str = SETUP_URL,
) -> list[tuple[str, Path]]:
    """(url, destination) of every file the recipe needs, annotations first (small)."""
    skip = set(read_list(lists_dir / "no_sdm_audio.txt"))
    setup = ami / "AMI-diarization-setup"
    annotations, audio = [], []
    for split in SPLITS:
        annotations.append((f"{setup_url}/lists/{split}.meetings.txt",
                            setup / "lists" / f"{split}.meetings.txt"))
        for meeting in read_list(lists_dir / f"{split}.meetings.txt"):
            for rel in (f"only_words/rttms/{split}/{meeting}.rttm",
                        f"uems/{split}/{meeting}.uem"):
                annotations.append((f"{setup_url}/{rel}", setup / rel))
            if meeting not in skip:
                name = f"{meeting}/audio/{meeting}.Array1-01.wav"
                audio.append((f"{mirror}/{name}", ami / "amicorpus" / name))
    return annotations + audio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ami", type=Path, required=True, help="download directory (db.sh AMI)")
    parser.add_argument("--mirror", default=AMI_MIRROR, help="AMI corpus mirror base URL")
    parser.add_argument("--setup_url", default=SETUP_URL, help="AMI-diarization-setup raw URL")
    parser.add_argument("--lists", type=Path, default=HERE / "ami_splits")
    parser.add_argument("--retries", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    items = ami_items(args.ami, args.lists, args.mirror.rstrip("/"), args.setup_url.rstrip("/"))
    problems = download_all(items, retries=args.retries)
    if problems:
        print(f"{len(problems)} file(s) missing or truncated; re-run to resume:", file=sys.stderr)
        for line in problems:
            print("  " + line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
