"""Check a Kaldi-style diarization data dir and write its formatted copy (recipe stage 2).

Catching a missing wav, a wrong sample rate, NaN/inf samples, an unsafe recording key or an
RTTM line past the end of the audio here takes seconds; inside training it would surface hours
later. The formatted copy has absolute
wav paths, a sorted RTTM, a UEM (whole recordings when the source has none) and ``reco2dur``,
so that the later stages do not depend on the working directory or on optional files.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main, str2bool


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


def target():
    from espnet_prune.utils.datadir import validate_and_format

    return validate_and_format


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
