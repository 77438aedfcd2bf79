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
import json

from espnet_prune.utils.cli import run_main


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


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    import torch

    from espnet_prune.errors import ConfigError
    from espnet_prune.infer import bench
    from espnet_prune.utils.datadir import write_text

    if not 0.0 <= args.sparsity < 1.0:
        raise ConfigError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if not 0.025 <= args.seconds <= 3600:  # also rejects nan; 0.025 s: one 25 ms frame
        raise ConfigError(f"--seconds must be in [0.025, 3600], got {args.seconds}")
    if args.runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {args.runs}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.threads < 0:
        raise ConfigError(f"--threads must be 0 (default) or positive, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        result = bench.checkpoint_speed(args.checkpoint, args.seconds, args.batch_size,
                                        args.runs, args.device)
    else:
        result = bench.pruning_speedup(args.preset, args.sparsity, args.pruned, args.seconds,
                                       args.batch_size, args.runs, args.device)
    print(json.dumps(result))
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n", make_parents=True)
    return 0


if __name__ == "__main__":
    run_main(main)
