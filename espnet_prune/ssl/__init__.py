"""Self-supervised pre-training of the prunable WavLM: HuBERT-style masked prediction of
discrete targets (k-means of MFCC frames, or of a WavLM layer's features for a second
iteration), with WavLM's utterance mixing as an option.  Knows nothing of diarization; the
ESPnet task around it is :mod:`espnet_prune.tasks.wavlm_pretrain`."""

from espnet_prune.ssl.masking import span_mask
from espnet_prune.ssl.mixing import mix_utterances
from espnet_prune.ssl.model import MaskedPredictionModel
from espnet_prune.ssl.targets import (
    KMeansQuantizer,
    MfccFeatures,
    WavLMLayerFeatures,
    fit_kmeans,
)

__all__ = ["KMeansQuantizer", "MaskedPredictionModel", "MfccFeatures", "WavLMLayerFeatures",
           "fit_kmeans", "mix_utterances", "span_mask"]
