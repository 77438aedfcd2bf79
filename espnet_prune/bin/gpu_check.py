"""The check to run when a GPU is lent: unpruned vs pruned WavLM speed (Base+ and Large,
the paper's 80 %-sparse structures; fp32 and bf16; batch 1 and 16 of 8 s), a few steps of
ESPnet's trainer for the teacher and for the pruning stage (``--ngpu 1``, with and without
``--use_amp``) and ``diar_inference --ngpu 1``; prints a short table and one JSON.

On the device machine, from the repository root::

    python -m espnet_prune.bin.gpu_check --device cuda --json $OUT/gpu_check.json

(about 5-7 min; ``--time_budget`` stops starting sections after that many seconds).
``--device cpu --size ci`` runs the same sections shrunk to tiny models and a few seconds of
audio (the test). A section that fails is reported as ``{"error": ...}`` in the JSON; the
others still run. See espnet_prune/measure/gpu_check.py and BENCHMARKS.md there.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--size", default="full", choices=("full", "ci"),
                        help="full: the paper's shapes; ci: tiny shapes, seconds of work")
    parser.add_argument("--json", default=None, help="also write the JSON to this file")
    parser.add_argument("--time_budget", type=float, default=420.0,
                        help="seconds after which no further section starts (0: no limit)")
    parser.add_argument("--conf_dir", default=None,
                        help="recipe conf/ with train_teacher_wavlm_base_plus.yaml and "
                        "prune_s80.yaml (default: egs2/TEMPLATE/diar1/conf)")
    parser.add_argument("--work_dir", default=None,
                        help="where the temporary data and experiment dirs go (default: TMPDIR)")
    return parser


def target():
    from espnet_prune.measure.gpu_check import gpu_check

    return gpu_check


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
