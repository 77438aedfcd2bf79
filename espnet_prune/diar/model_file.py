"""Reading ESPnet model files without unpickling them, strictly.

ESPnet's ``build_model_from_file(config, model_file)`` and ``--init_param``
(``espnet2.torch_utils.load_pretrained_model``) read model files with
``torch.load(weights_only=False)`` — a full unpickle, which runs any code a crafted file
carries — and ``build_model_from_file`` loads with ``strict=False``, so a file of the wrong
kind (a bare WavLM, an fbank model) silently leaves the network at its initial weights.  Every
CLI of this project reads model files through this module instead:

* :func:`load_trained_model`: ``build_model_from_file(config, None)`` (model from the
  training config only; or a builder function of the config, see :func:`build_model`),
  then the state dict read with ``weights_only=True``
  (:func:`espnet_prune.utils.checkpoint.read_checkpoint`) and loaded strictly, every problem a
  one-line error naming the file (and the key).
* :func:`load_pretrained_model`: ESPnet's ``--init_param`` semantics
  (``path:src_key:dst_key:excludes``, ``--ignore_init_mismatch``) on a ``weights_only`` read;
  :func:`install_safe_init_param` puts it in place of ESPnet's in ``espnet2.tasks.abs_task``
  (done by the plugin's post-import hook, see :mod:`espnet_prune.registration`, so every
  process that imported ``espnet_prune`` — also the workers of a multi-GPU run — is covered).

The module imports neither torch nor espnet2 at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from espnet_prune.errors import CheckpointError, ConfigError

WAVLM_HINT = ("a bare WavLM checkpoint (format 'espnet_prune.wavlm'), not an ESPnet model file "
              "(a state dict written by diar_train, e.g. exp/diar_*/valid.loss.ave.pth)")


def parse_task_args(parser, argv):
    """``parser.parse_args(argv)`` of an ESPnet task parser; a broken ``--config`` YAML (which
    ESPnet's parser reads with ``yaml.safe_load``) becomes one line naming the file."""
    import yaml

    from espnet_prune.utils.config_file import yaml_error

    try:
        return parser.parse_args(argv)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, None, "--config") from None


def read_train_config(path, option: str = "--train_config") -> dict:
    """The training ``config.yaml`` as a mapping; broken YAML is one line with its position."""
    from espnet_prune.utils.config_file import read_yaml_mapping

    return read_yaml_mapping(path, option)


def read_model_state(path, what: str = "model file", reject_wavlm: bool = True) -> dict:
    """A model state dict read with ``weights_only=True`` (DeepSpeed's ``{"module": ...}``
    unwrapped, as ESPnet does); anything else is a one-line CheckpointError naming ``path``."""
    import torch

    from espnet_prune.utils.checkpoint import read_checkpoint
    from espnet_prune.wavlm.checkpoint import FORMAT

    state = read_checkpoint(path, what)
    if isinstance(state, dict) and state.get("format") == FORMAT and reject_wavlm:
        raise CheckpointError(f"{path}: {what} is {WAVLM_HINT}")
    if isinstance(state, dict) and isinstance(state.get("module"), dict):
        state = state["module"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: {what} must hold a state dict, got "
                              f"{type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: {what} is not a model state dict (key {key!r} holds a "
                f"{type(value).__name__}; ESPnet's resume file checkpoint.pth is not a model "
                "file: give e.g. valid.loss.ave.pth)")
    return state


def build_model(task, config_file, device: str = "cpu", option: str = "--train_config"):
    """The untrained model of ``config_file``: ``task.build_model_from_file(config_file, None,
    device)`` for an ESPnet task, or ``task(conf)`` for a builder function of the config's
    mapping (what ``build_model_from_file`` does, without importing ESPnet's task machinery);
    config values the model cannot be built from are one line naming the file."""
    from espnet_prune.errors import EspnetPruneError

    conf = read_train_config(config_file, option)
    try:
        if hasattr(task, "build_model_from_file"):
            model, _ = task.build_model_from_file(config_file, None, device)
        else:
            if conf.get("use_adapter"):
                raise ConfigError(f"{config_file}: adapters (use_adapter) are not supported")
            model = task(conf).to(device)
    except ConfigError as exc:
        message = str(exc)
        raise (exc if message.startswith(str(config_file)) else
               ConfigError(f"{config_file}: {message}")) from None
    except EspnetPruneError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        message = (str(exc).splitlines() or [""])[0]
        raise ConfigError(f"{config_file}: cannot build the model from this {option} "
                          f"({type(exc).__name__}: {message})") from None
    return model


def load_state(model, state: dict, source) -> None:
    """Strict load (first missing/unknown/wrong-shape key named with ``source``)."""
    from espnet_prune.utils.state_dict import load_state_dict_strict

    load_state_dict_strict(model, state, source)


def load_trained_model(task, config_file, model_file, device: str = "cpu", *,
                       config_option: str = "--train_config",
                       model_option: str = "--model_file"):
    """The model of ``config_file`` with ``model_file`` loaded strictly, without unpickling;
    in eval mode."""
    read_train_config(config_file, config_option)
    if not Path(model_file).exists():
        raise CheckpointError(f"{model_file}: {model_option} file does not exist")
    state = read_model_state(model_file, f"{model_option} file")
    model = build_model(task, config_file, device, config_option)
    load_state(model, state, model_file)
    return model.eval()


def load_pretrained_model(init_param: str, model, ignore_init_mismatch: bool,
                          map_location: str = "cpu") -> None:
    """ESPnet's ``load_pretrained_model`` (same ``path:src_key:dst_key:excludes`` syntax and
    ``ignore_init_mismatch``), but the file is read with ``weights_only=True`` and every
    problem is one line naming it."""
    from espnet2.torch_utils.load_pretrained_model import filter_state_dict

    parts = init_param.split(":", 4)
    path, src_key, dst_key, excludes = (parts + [None] * 3)[:4]
    src_key, dst_key, excludes = src_key or None, dst_key or None, excludes or None
    target = model
    if dst_key is not None:
        for attr in dst_key.split("."):
            if not hasattr(target, attr):
                raise ConfigError(f"--init_param {init_param}: the model has no {dst_key!r}")
            target = getattr(target, attr)
    if not Path(path).exists():
        raise CheckpointError(f"{path}: --init_param file does not exist")
    src_state = read_model_state(path, "--init_param file", reject_wavlm=False)
    if excludes is not None:
        for prefix in excludes.split(","):
            src_state = {k: v for k, v in src_state.items() if not k.startswith(prefix)}
    if src_key is not None:
        src_state = {k[len(src_key) + 1:]: v for k, v in src_state.items()
                     if k.startswith(src_key)}
    dst_state = target.state_dict()
    if ignore_init_mismatch:
        src_state = filter_state_dict(dst_state, src_state)
    unknown = [k for k in src_state if k not in dst_state]
    if unknown:
        raise CheckpointError(f"{path}: --init_param key {unknown[0]!r} is not in the model"
                              + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    for key, value in src_state.items():
        if tuple(value.shape) != tuple(dst_state[key].shape):
            raise CheckpointError(f"{path}: --init_param key {key!r} has shape "
                                  f"{tuple(value.shape)}, the model expects "
                                  f"{tuple(dst_state[key].shape)} (or use --ignore_init_mismatch)")
    dst_state.update(src_state)
    target.load_state_dict(dst_state)
    logging.info("loaded %d tensors from %s", len(src_state), path)


def install_safe_init_param(abs_task_module=None) -> None:
    """ESPnet's ``--init_param`` (``AbsTask.main_worker``) → :func:`load_pretrained_model`."""
    if abs_task_module is None:
        import espnet2.tasks.abs_task as abs_task_module
    abs_task_module.load_pretrained_model = load_pretrained_model


def run_state_globals() -> tuple:
    """The plain-data types besides tensors in ESPnet's ``checkpoint.pth`` (numpy scalars and
    dtypes of the reporter's statistics, its ``timedelta`` timings)."""
    import datetime

    import numpy as np

    scalar = getattr(getattr(np, "_core", None), "multiarray", None) or np.core.multiarray
    return (np.dtype, type(np.dtype("float64")), type(np.dtype("float32")),
            type(np.dtype("int64")), datetime.timedelta, scalar.scalar)


def read_run_state(path) -> dict:
    """ESPnet's resume file (``checkpoint.pth``: model, reporter, optimiser and scheduler
    states) read with ``weights_only=True``; ESPnet's own trainer unpickles it in full."""
    from espnet_prune.utils.checkpoint import read_checkpoint

    state = read_checkpoint(path, "ESPnet resume file", extra_globals=run_state_globals())
    if not isinstance(state, dict) or "model" not in state or "reporter" not in state:
        raise CheckpointError(f"{path}: not an ESPnet resume file (keys 'model', 'reporter')")
    return state
