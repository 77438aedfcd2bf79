"""The prunable-WavLM checkpoint file:
``{"format": "espnet_prune.wavlm", "version": 1, "config": dict, "state_dict": {...}}``.

Loading is strict: a missing, unknown or wrong-shape key is a ``CheckpointError`` naming the
file and the key.
"""

from __future__ import annotations

import os

import torch

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.wavlm.config import WavLMConfig
from espnet_prune.wavlm.model import WavLM

FORMAT = "espnet_prune.wavlm"
VERSION = 1


def save_wavlm(model: WavLM, path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
                "state_dict": state}, path)


def load_state_dict_strict(model: torch.nn.Module, state_dict: dict, source) -> None:
    """``load_state_dict`` that names the first offending key and the file on any mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unknown = [k for k in state_dict if k not in expected]
    if missing:
        raise CheckpointError(f"{source}: missing key {missing[0]!r}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unknown:
        raise CheckpointError(f"{source}: unknown key {unknown[0]!r}"
                              + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{source}: key {k!r} is not a tensor")
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(f"{source}: key {k!r} has shape {tuple(v.shape)}, the config "
                                  f"expects {tuple(expected[k].shape)}")
    model.load_state_dict(state_dict, strict=True)


def read_checkpoint(path) -> dict:
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from exc
    return data


def load_wavlm(path, pruning_units=None) -> WavLM:
    """Load a checkpoint written by ``save_wavlm`` (eval mode, CPU).

    A masked checkpoint (config lists ``pruning_units``) comes back with its gates; passing
    ``pruning_units`` for an ungated checkpoint adds fresh gates after loading."""
    data = read_checkpoint(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an espnet_prune WavLM checkpoint (key 'format' "
                              f"must be {FORMAT!r}; convert it with "
                              "`python -m espnet_prune.bin.wavlm_convert`)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported key 'version' = {data.get('version')!r}")
    for key in ("config", "state_dict"):
        if not isinstance(data.get(key), dict):
            raise CheckpointError(f"{path}: missing or malformed key {key!r}")
    try:
        config = WavLMConfig.from_dict(data["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad key 'config': {exc}") from exc
    model = WavLM(config)
    load_state_dict_strict(model, data["state_dict"], path)
    if pruning_units and not config.pruning_units:
        model.add_pruning_gates(pruning_units)
    return model.eval()
