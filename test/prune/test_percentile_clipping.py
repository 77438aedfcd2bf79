"""The reference's adaptive gradient clipping (90th percentile of the last 1000 norms) as an
optimiser wrapper that ESPnet's trainer drives through ``optimizer.step()``."""

import numpy as np
import pytest
import torch
from torch import nn

from espnet_prune.errors import ConfigError
from espnet_prune.prune.optim import with_percentile_clipping


def reference_clip_values(norms, percentile, history_size):
    """What the reference trainer clips at, step by step (history includes the current norm)."""
    history, values = [], []
    for n in norms:
        history.append(n)
        if len(history) > history_size:
            history.pop(0)
        values.append(float(np.percentile(history, percentile)))
    return values


def test_clips_at_the_running_percentile_and_skips_the_lambdas():
    weight = nn.Parameter(torch.zeros(4))
    lam = nn.Parameter(torch.zeros(2))
    optim_class = with_percentile_clipping(torch.optim.SGD, percentile=50, history_size=3)
    optimizer = optim_class([{"params": [weight], "name": "weights", "lr": 1.0},
                             {"params": [lam], "name": "lambda", "lr": 1.0}])
    assert isinstance(optimizer, torch.optim.SGD)
    norms = [1.0, 4.0, 2.0, 8.0, 0.5]
    expected = reference_clip_values(norms, 50, 3)
    for norm, clip in zip(norms, expected):
        before = weight.detach().clone()
        weight.grad = torch.tensor([norm, 0.0, 0.0, 0.0])
        lam.grad = torch.tensor([100.0, 0.0])
        optimizer.step()
        applied = float((before - weight.detach()).norm())
        assert applied == pytest.approx(min(norm, clip), rel=1e-5)
        assert float(lam.grad[0]) == 100.0  # the multipliers are neither counted nor clipped
    assert optimizer.grad_norm_history == pytest.approx(norms[-3:])
    # the first step never clips (the history is just the current norm); later ones may
    assert expected[0] == norms[0] and expected[3] < norms[3]


def test_state_dict_round_trip_and_bad_settings():
    param = nn.Parameter(torch.ones(2))
    optim_class = with_percentile_clipping(torch.optim.AdamW)
    optimizer = optim_class([{"params": [param], "name": "weights"}], lr=0.1)
    param.grad = torch.ones(2)
    optimizer.step()
    restored = optim_class([{"params": [param], "name": "weights"}], lr=0.1)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.state_dict()["state"][0]["step"] == 1
    with pytest.raises(ConfigError):
        with_percentile_clipping(torch.optim.SGD, percentile=0)
