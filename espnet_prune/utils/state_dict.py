"""Strict state-dict loading for any module (WavLM, the diarization model, WeSpeaker)."""

from __future__ import annotations

import torch

from espnet_prune.errors import CheckpointError


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
