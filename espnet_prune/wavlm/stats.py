"""Parameters and MACs of a (pruned) WavLM in the paper's counting convention, as the
``wavlm_stats`` command line reports them (see :mod:`espnet_prune.wavlm.counting`)."""

from __future__ import annotations

import json
import os

from espnet_prune.wavlm.checkpoint import load_wavlm
from espnet_prune.wavlm.config import PRETRAINING_HEADS, wavlm_config
from espnet_prune.wavlm.counting import pretraining_head_params
from espnet_prune.wavlm.model import WavLM


def model_stats(model: WavLM, preset: str | None = None) -> dict:
    """Sizes of ``model`` (and, for a preset with pre-training heads, the size with them)."""
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


def print_stats(model: str) -> dict:
    """``wavlm_stats``: :func:`model_stats` of a checkpoint file or a preset name, printed as
    one JSON line."""
    if os.path.exists(model):
        wavlm, preset = load_wavlm(model), None
    else:
        wavlm, preset = WavLM(wavlm_config(model)), model
    stats = model_stats(wavlm, preset)
    print(json.dumps(stats))
    return stats
