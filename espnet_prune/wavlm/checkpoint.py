"""The prunable-WavLM checkpoint file:
``{"format": "espnet_prune.wavlm", "version": 1, "config": dict, "state_dict": {...}}``.

Loading is strict: a missing, unknown or wrong-shape key is a ``CheckpointError`` naming the
file and the key.

No checkpoint is ever unpickled in full: it is read with
:func:`espnet_prune.utils.checkpoint.read_checkpoint` (``weights_only=True``).  Writing goes
through a temporary file and a rename (:func:`espnet_prune.utils.io.atomic_torch_save`), so an
interrupted write leaves no final-looking file.
"""

from __future__ import annotations

import json

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.utils.checkpoint import read_checkpoint
from espnet_prune.utils.state_dict import load_state_dict_strict
from espnet_prune.wavlm.config import WavLMConfig
from espnet_prune.wavlm.model import WavLM

FORMAT = "espnet_prune.wavlm"
VERSION = 1


def save_wavlm(model: WavLM, path) -> None:
    """Write ``path`` atomically (parents created); a bad output path is a one-line error."""
    from espnet_prune.utils.io import atomic_torch_save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
                       "state_dict": state}, path)


def load_wavlm(path, pruning_units=None) -> WavLM:
    """Load a checkpoint written by ``save_wavlm`` (eval mode, CPU).

    A masked checkpoint (config lists ``pruning_units``) comes back with its gates; passing
    ``pruning_units`` for an ungated checkpoint adds fresh gates after loading."""
    data = read_checkpoint(path, "WavLM checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an espnet_prune WavLM checkpoint (key 'format' "
                              f"must be {FORMAT!r}; convert it with the wavlm_convert "
                              "command line)")
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


def prune_file(source: str, output: str) -> dict:
    """``wavlm_prune``: physically prune the masked checkpoint ``source`` (units whose
    deterministic gate is 0 go, kept gate values are folded into the next layer) into
    ``output``; prints and returns a one-line JSON summary."""
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.wavlm.counting import count_params

    check_output_file(output, make_parents=True)
    model = load_wavlm(source)
    if not model.config.pruning_units:
        raise CheckpointError(f"{source}: config has no 'pruning_units' (not a masked "
                              "checkpoint); nothing to prune")
    params_before = count_params(model.config, model.structure("actual"))
    model.prune()
    save_wavlm(model, output)
    summary = {"output": output, "params_before": params_before,
               "params": model.num_params(), "macs_per_second": model.macs_per_second()}
    print(json.dumps(summary))
    return summary
