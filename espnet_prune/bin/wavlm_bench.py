"""Time WavLM forwards (eval, inference mode, median over interleaved runs) on fixed random
audio, and print the result as JSON (also written to ``--json``).

Default: the unpruned vs the pruned WavLM (8 s of audio, batch 1) to check that parameter/MAC
savings turn into real speed. The pruned model is ``--pruned CKPT``, or else a structure for
``--sparsity``: for Base+ at 0.8 the per-layer structure of BUT's released 80 %-sparse Base+
(preset ``base_plus_s80``), and otherwise every conv layer, head set and FFN shrunk by the same
fraction until the parameter count reaches the target. Weights are random: speed does not
depend on them.

``--checkpoint CKPT``: the speed record of that one WavLM instead (recipe stage 8 writes it to
``exp/<model>/wavlm_bench.json``; make_results turns teacher / pruned into the speed-up).
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base_plus", help="unpruned model: base_plus, large")
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--pruned", default=None, help="pruned checkpoint (overrides sparsity)")
    parser.add_argument("--checkpoint", default=None,
                        help="time this WavLM checkpoint alone (no comparison)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch_size", type=int, default=1,
                        help="recordings of --seconds each per forward")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", default=None, help="also write the result to this file")
    return parser


def target():
    from espnet_prune.measure.bench import benchmark_wavlm

    return benchmark_wavlm


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
