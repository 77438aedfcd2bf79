"""Time the unpruned vs the pruned WavLM forward (8 s of audio, batch 1, eval, inference mode,
interleaved runs, median) to check that parameter/MAC savings turn into real speed.

The pruned model is ``--pruned CKPT``, or else a structure for ``--sparsity``: for Base+ at 0.8
the per-layer structure of BUT's released 80 %-sparse Base+ (preset ``base_plus_s80``), and
otherwise every conv layer, head set and FFN shrunk by the same fraction until the parameter
count reaches the target.  Weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

from espnet_prune.utils.cli import run_main


def uniform_structure(config, sparsity: float):
    """Shrink all prunable units by one fraction so params ~= (1 - sparsity) * full."""
    from espnet_prune.wavlm.counting import count_params, structure_of_config

    target = (1.0 - sparsity) * count_params(config, structure_of_config(config))

    def shrunk(q):
        cfg = copy.deepcopy(config)
        cfg.conv_channels = [max(1, round(c * q)) for c in cfg.conv_channels]
        cfg.kept_heads = [h[:max(1, round(len(h) * q))] for h in cfg.kept_heads]
        cfg.ffn_dims = [max(1, round(f * q)) for f in cfg.ffn_dims]
        return cfg

    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if count_params(shrunk(mid), structure_of_config(shrunk(mid))) > target:
            hi = mid
        else:
            lo = mid
    return shrunk(lo)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base_plus", help="unpruned model: base_plus, large")
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--pruned", default=None, help="pruned checkpoint (overrides sparsity)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    import torch

    from espnet_prune.errors import ConfigError
    from espnet_prune.wavlm import WavLM, load_wavlm, wavlm_config

    if not 0.0 <= args.sparsity < 1.0:
        raise ConfigError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if not 0.025 <= args.seconds <= 3600:  # also rejects nan; 0.025 s: one 25 ms frame
        raise ConfigError(f"--seconds must be in [0.025, 3600], got {args.seconds}")
    if args.runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {args.runs}")
    if args.threads < 0:
        raise ConfigError(f"--threads must be 0 (default) or positive, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    full = WavLM(wavlm_config(args.preset)).eval()
    if args.pruned:
        pruned, structure = load_wavlm(args.pruned), f"checkpoint {args.pruned}"
        if pruned.config.pruning_units:
            pruned.prune()
            structure += " (gates applied with prune())"
    elif args.preset == "base_plus" and abs(args.sparsity - 0.8) < 1e-9:
        pruned, structure = WavLM(wavlm_config("base_plus_s80")).eval(), "base_plus_s80"
    else:
        pruned = WavLM(uniform_structure(wavlm_config(args.preset), args.sparsity)).eval()
        structure = f"uniform shrink to sparsity {args.sparsity}"
    device = torch.device(args.device)
    full, pruned = full.to(device), pruned.to(device)
    wav = torch.randn(1, int(args.seconds * 16000), device=device)

    def run(model):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            model.extract_features(wav)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(2):
        run(full), run(pruned)
    times = {"full": [], "pruned": []}
    for _ in range(args.runs):
        times["full"].append(run(full))
        times["pruned"].append(run(pruned))
    t_full, t_pruned = statistics.median(times["full"]), statistics.median(times["pruned"])
    print(json.dumps({
        "preset": args.preset, "pruned_structure": structure, "device": str(device),
        "threads": torch.get_num_threads(), "seconds_of_audio": args.seconds, "batch": 1,
        "params_full": full.num_params(), "params_pruned": pruned.num_params(),
        "macs_per_second_full": full.macs_per_second(),
        "macs_per_second_pruned": pruned.macs_per_second(),
        "macs_ratio": full.macs_per_second() / pruned.macs_per_second(),
        "sparsity_params": 1.0 - pruned.num_params() / full.num_params(),
        "time_full_s": t_full, "time_pruned_s": t_pruned, "speedup": t_full / t_pruned,
        "runs": args.runs}))
    return 0


if __name__ == "__main__":
    run_main(main)
