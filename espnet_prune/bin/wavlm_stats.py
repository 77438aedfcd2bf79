"""Parameters and MACs of a (pruned) WavLM, in the paper's counting convention.

MODEL is a checkpoint (``espnet_prune.wavlm`` format; a masked checkpoint is counted as the
model its gates would give) or a preset name (base_plus, base, large, tiny, base_plus_s80).
See :mod:`espnet_prune.wavlm.counting` for what is counted.
"""

from __future__ import annotations

import argparse
import json
import os

from espnet_prune.utils.cli import run_main


def model_stats(model, preset: str | None = None) -> dict:
    from espnet_prune.wavlm.config import PRETRAINING_HEADS
    from espnet_prune.wavlm.counting import pretraining_head_params

    stats = {
        "params": model.num_params(),
        "macs_per_second": model.macs_per_second(),
        "params_m": round(model.num_params() / 1e6, 2),
        "gmacs_per_second": round(model.macs_per_second() / 1e9, 3),
        "tensor_elements": sum(p.numel() for p in model.parameters()),
        "num_layers": model.config.num_layers,
        "conv_channels": list(model.config.conv_channels),
        "heads": [len(h) if a else 0 for h, a in zip(model.config.kept_heads,
                                                     model.config.use_attention)],
        "ffn_dims": [f if u else 0 for f, u in zip(model.config.ffn_dims, model.config.use_ffn)],
    }
    if model.config.pruning_units:
        stats["expected_params"] = float(model.expected_num_params().detach())
        stats["expected_macs_per_second"] = float(model.expected_macs().detach())
    if preset in PRETRAINING_HEADS:
        extra = pretraining_head_params(model.config, *PRETRAINING_HEADS[preset])
        stats["params_with_pretraining_heads"] = stats["params"] + extra
    return stats


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="checkpoint path or preset name")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.wavlm import WavLM, load_wavlm, wavlm_config

    if os.path.exists(args.model):
        model, preset = load_wavlm(args.model), None
    else:
        model, preset = WavLM(wavlm_config(args.model)), args.model
    print(json.dumps(model_stats(model, preset)))
    return 0


if __name__ == "__main__":
    run_main(main)
