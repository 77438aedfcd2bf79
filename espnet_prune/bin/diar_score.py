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
import json
import sys

from espnet_prune.utils.cli import run_main


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
    parser.add_argument("--json", default=None, help="write the scores as JSON to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.infer.scoring import format_table, score
    from espnet_prune.utils.datadir import read_uem, write_text
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.utils.rttm import read_rttm

    if args.json:
        check_output_file(args.json, make_parents=True)  # fail before scoring, not after
    reference = read_rttm(args.ref)
    hypothesis = read_rttm(args.hyp, allow_empty=True)
    uem = read_uem(args.uem) if args.uem else None
    scores = score(reference, hypothesis, uem=uem, collar=args.collar, scorer=args.scorer,
                   ref_name=args.ref, hyp_name=args.hyp)
    region = "UEM " + args.uem if args.uem else "first-to-last segment of ref+hyp (no UEM)"
    print(f"# scorer={args.scorer} collar={args.collar:g}s (total width) region={region}")
    print(format_table(scores))
    if args.json:
        write_text(args.json, json.dumps(scores, indent=2) + "\n", make_parents=True)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    run_main(main)
