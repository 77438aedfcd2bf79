"""Score diarization output: DER (miss / false alarm / confusion) and JER, overlap scored.

``--collar`` is pyannote.metrics' total no-score width around each reference boundary:
md-eval ``-c 0.25`` corresponds to ``--collar 0.5``. Without ``--uem`` each recording is scored
from the first to the last segment of reference and hypothesis together; pass a UEM to compare
with published numbers. Rates in ``--json`` are fractions (0.153 = 15.3 %).

Refused with a one-line error instead of a meaningless 100 % DER: a hypothesis none of whose
recordings is in the reference, and times that are evidently samples rather than seconds (a
hypothesis recording ending after 10 x its reference/UEM end + 60 s; ESPnet's own ``rttm`` data
type counts samples). The ``--json`` file is written atomically (complete or absent).
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref", required=True, help="reference RTTM")
    parser.add_argument("--hyp", required=True, help="hypothesis RTTM")
    parser.add_argument("--uem", default=None, help="UEM (recording channel start end)")
    parser.add_argument(
        "--collar",
        type=float,
        default=0.0,
        help="total no-score width (s) centred on reference boundaries (md-eval -c 0.25 = 0.5)",
    )
    parser.add_argument(
        "--scorer",
        choices=("pyannote", "md-eval"),
        default="pyannote",
        help="DER from pyannote.metrics or from md-eval.pl (sctk); JER is always pyannote's",
    )
    parser.add_argument("--json", dest="json_path", default=None,
                        help="write the scores as JSON to this file")
    return parser


def target():
    from espnet_prune.eval.scoring import score_files

    return score_files


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
