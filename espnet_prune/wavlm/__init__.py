"""Prunable WavLM (also HuBERT / wav2vec 2.0): model, hard-concrete gates, physical pruning,
parameter/MAC counting and checkpoints.  Imports neither espnet2, s3prl nor transformers."""

from espnet_prune.wavlm.checkpoint import load_wavlm, save_wavlm
from espnet_prune.wavlm.config import (
    DEFAULT_PRUNING_UNITS,
    PRUNING_UNITS,
    WavLMConfig,
    wavlm_config,
)
from espnet_prune.wavlm.hardconcrete import HardConcrete
from espnet_prune.wavlm.model import WavLM

__all__ = ["DEFAULT_PRUNING_UNITS", "PRUNING_UNITS", "HardConcrete", "WavLM", "WavLMConfig",
           "load_wavlm", "save_wavlm", "wavlm_config"]
