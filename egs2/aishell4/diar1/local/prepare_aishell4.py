"""AISHELL-4 (OpenSLR 111) → data/{train,dev,test}: first array channel, TextGrid → RTTM, UEM.

Layout read: ``<corpus>/{train_L,train_M,train_S,test}/wav/<session>.flac`` (8 channels) and
``<corpus>/<part>/TextGrid/<session>.TextGrid`` (one interval tier per speaker). The dev set is
a fixed list of training sessions (``local/aishell4_dev_sessions.txt``), as in the paper.
"""

from __future__ import annotations

import logging
from pathlib import Path

from download_aishell4 import ARCHIVES, OPENSLR  # this script's directory

from espnet_prune.corpus.download import download_unless_complete
from espnet_prune.corpus.meeting_prep import (
    prepare_textgrid_splits,
    read_list,
    setup_logging,
    textgrid_prep_parser,
)
from espnet_prune.errors import DataError
from espnet_prune.utils.cli import run_main

TRAIN_PARTS = ("train_L", "train_M", "train_S")
TEST_PART = "test"
log = logging.getLogger("prepare_aishell4")


def find_sessions(corpus: Path, part: str) -> dict[str, tuple[Path, Path]]:
    """``{session: (flac, TextGrid)}`` of one part; a file without its partner is an error."""
    part_dir = corpus / part
    wav_dir, tg_dir = part_dir / "wav", part_dir / "TextGrid"
    for needed in (wav_dir, tg_dir):
        if not needed.is_dir():
            raise DataError(f"{needed}: directory does not exist (is the AISHELL-4 '{part}' "
                            "archive extracted under this corpus directory?)")
    grids = {p.stem: p for p in tg_dir.glob("*.TextGrid")}
    audios = {p.stem: p for p in wav_dir.glob("*.flac")}
    for session, grid in sorted(grids.items()):
        if session not in audios:
            raise DataError(f"{wav_dir / (session + '.flac')}: meeting audio file does not exist "
                            f"(annotation {grid} has no audio)")
    for session in sorted(audios):
        if session not in grids:
            raise DataError(f"{tg_dir / (session + '.TextGrid')}: annotation file does not exist "
                            f"(audio {audios[session]} has no TextGrid)")
    return {s: (audios[s], grids[s]) for s in grids}


def main(argv=None) -> int:
    parser = textgrid_prep_parser(__doc__.splitlines()[0], "AISHELL-4", OPENSLR)
    parser.add_argument("--dev_list", type=Path,
                        default=Path(__file__).resolve().parent / "aishell4_dev_sessions.txt")
    args = parser.parse_args(argv)
    setup_logging()
    if args.download and download_unless_complete(args.corpus, args.url, ARCHIVES,
                                                  "AISHELL-4 (OpenSLR 111)"):
        return 1
    audio_dir = args.audio_dir or args.data / "audio" / "aishell4"

    train: dict[str, tuple[Path, Path]] = {}
    for part in TRAIN_PARTS:
        train.update(find_sessions(args.corpus, part))
    test = find_sessions(args.corpus, TEST_PART)
    dev_ids = read_list(args.dev_list)
    absent = [s for s in dev_ids if s not in train]
    if absent:
        raise DataError(f"{args.dev_list}: dev session(s) {', '.join(absent)} not found in "
                        f"{', '.join(str(args.corpus / p) for p in TRAIN_PARTS)}")
    dev = {s: train.pop(s) for s in dev_ids}
    log.info("AISHELL-4 sessions: train %d, dev %d, test %d (paper: 173 / 18 / 20)",
             len(train), len(dev), len(test))
    prepare_textgrid_splits(args.data, args.prefix, {"train": train, "dev": dev, "test": test},
                            audio_dir, nj=args.nj)
    return 0


if __name__ == "__main__":
    run_main(main)
