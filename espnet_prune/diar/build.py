"""The EEND model from the fields of its training ``config.yaml``, without ESPnet's task.

:class:`espnet_prune.tasks.diar.PowersetDiarizationTask` builds its model with
:func:`build_diarization_model`; inference builds the same model from a trained model's config
through it directly. Importing ESPnet's ``AbsTask`` costs ~18 s and ~390 MB of resident memory
(``espnet2.tasks.abs_task``; measured on the 2-core CI machine), which an inference run does not
need: the model's own modules cost nothing beyond torch.
"""

from __future__ import annotations

from collections.abc import Mapping

from espnet_prune.diar.encoder import PowersetConformerEncoder
from espnet_prune.diar.frontends import FRONTENDS
from espnet_prune.diar.model import PowersetDiarizationModel
from espnet_prune.errors import ConfigError

# encoder name in the training config -> class (the task's --encoder choices)
ENCODERS = {"conformer": PowersetConformerEncoder}


def choose(registry: Mapping, kind: str, name) -> type:
    """``registry[name]`` as ESPnet's ClassChoices looks it up (case-insensitive)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of {sorted(registry)}")
    return registry[key]


# the config keys that define a model (all build_diarization_model reads): what the ONNX
# export's config fingerprint covers (espnet_prune.infer.export)
MODEL_CONFIG_KEYS = ("frontend", "frontend_conf", "encoder", "encoder_conf", "model_conf")


def build_diarization_model(conf: Mapping) -> PowersetDiarizationModel:
    """``frontend``/``frontend_conf``, ``encoder``/``encoder_conf`` and ``model_conf`` of a
    training config → the untrained model (the encoder's ``input_size`` defaults to its
    ``output_size``: the model projects the frontend's features to it)."""
    frontend = choose(FRONTENDS, "frontend", conf.get("frontend", "fbank"))(
        **(conf.get("frontend_conf") or {}))
    encoder_conf = dict(conf.get("encoder_conf") or {})
    encoder_conf.setdefault("input_size", encoder_conf.get("output_size", 256))
    encoder = choose(ENCODERS, "encoder", conf.get("encoder", "conformer"))(**encoder_conf)
    return PowersetDiarizationModel(frontend=frontend, encoder=encoder,
                                    **(conf.get("model_conf") or {}))
