"""AliMeeting (OpenSLR 119) far field → data/{train,dev,test}: first channel, TextGrid → RTTM.

Layout read: ``<corpus>/Train_Ali_far``, ``<corpus>/Eval_Ali/Eval_Ali_far`` and
``<corpus>/Test_Ali/Test_Ali_far`` (``Eval_Ali_far``/``Test_Ali_far`` directly under the corpus
are accepted too), each with ``audio_dir/<room>_<meeting>_<mic>.wav`` (8 channels) and
``textgrid_dir/<room>_<meeting>.TextGrid`` (one interval tier per speaker). Train → train,
Eval → dev, Test → test; recordings are named after the wav file (e.g. R8002_M8002_MS802).
"""

from __future__ import annotations

import logging
from pathlib import Path

from download_alimeeting import ARCHIVES, OPENSLR  # this script's directory

from espnet_prune.corpus.download import download_unless_complete
from espnet_prune.corpus.meeting_prep import (
    prepare_textgrid_splits,
    setup_logging,
    textgrid_prep_parser,
)
from espnet_prune.errors import DataError
from espnet_prune.utils.cli import run_main

SPLITS = {"train": "Train", "dev": "Eval", "test": "Test"}
log = logging.getLogger("prepare_alimeeting")


def far_dir(corpus: Path, part: str) -> Path:
    candidates = [corpus / f"{part}_Ali_far", corpus / f"{part}_Ali" / f"{part}_Ali_far"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DataError(f"{candidates[-1] if part != 'Train' else candidates[0]}: directory does not "
                    f"exist (is the AliMeeting {part} archive extracted under {corpus}?)")


def find_sessions(part_dir: Path) -> dict[str, tuple[Path, Path]]:
    """``{recording: (wav, TextGrid)}``; each TextGrid needs exactly one wav and vice versa."""
    wav_dir, tg_dir = part_dir / "audio_dir", part_dir / "textgrid_dir"
    for needed in (wav_dir, tg_dir):
        if not needed.is_dir():
            raise DataError(f"{needed}: directory does not exist")
    wavs = sorted(wav_dir.glob("*.wav"))
    sessions: dict[str, tuple[Path, Path]] = {}
    used: set[Path] = set()
    for grid in sorted(tg_dir.glob("*.TextGrid")):
        matches = [w for w in wavs if w.stem == grid.stem or w.stem.startswith(grid.stem + "_")]
        if not matches:
            raise DataError(f"{wav_dir / (grid.stem + '_MS*.wav')}: meeting audio file does not "
                            f"exist (annotation {grid} has no audio)")
        if len(matches) > 1:
            raise DataError(f"{grid}: several audio files match it: "
                            f"{', '.join(m.name for m in matches)}")
        sessions[matches[0].stem] = (matches[0], grid)
        used.add(matches[0])
    for wav in wavs:
        if wav not in used:
            raise DataError(f"{tg_dir}: no TextGrid for audio {wav} (expected "
                            f"{'_'.join(wav.stem.split('_')[:2])}.TextGrid)")
    return sessions


def main(argv=None) -> int:
    args = textgrid_prep_parser(__doc__.splitlines()[0], "AliMeeting", OPENSLR).parse_args(argv)
    setup_logging()
    if args.download and download_unless_complete(args.corpus, args.url, ARCHIVES,
                                                  "AliMeeting far field (OpenSLR 119)"):
        return 1
    audio_dir = args.audio_dir or args.data / "audio" / "alimeeting"
    found = {name: find_sessions(far_dir(args.corpus, part)) for name, part in SPLITS.items()}
    log.info("AliMeeting far sessions: train %d, dev %d, test %d (paper: 209 / 8 / 20)",
             *(len(found[n]) for n in SPLITS))
    prepare_textgrid_splits(args.data, args.prefix, found, audio_dir, nj=args.nj)
    return 0


if __name__ == "__main__":
    run_main(main)
