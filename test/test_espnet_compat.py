"""Each ESPnet 202511 work-around fixes its defect.

Run with ``ESPNET_PRUNE_DISABLE_COMPAT=1`` to see every ``test_fixed_*`` fail (the module then
leaves ESPnet's original behaviour in place).
"""

import pytest
import torch

from espnet_prune import espnet_compat as compat


def test_fixed_trainer_checkpoints_are_atomic(tmp_path, monkeypatch):
    import espnet2.train.trainer as trainer_module

    def killed_mid_write(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 truncated")
        raise KeyboardInterrupt

    target = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 1}, target)
    monkeypatch.setattr(torch, "save", killed_mid_write)
    with compat.atomic_checkpoints(), pytest.raises(KeyboardInterrupt):
        trainer_module.torch.save({"epoch": 2}, target)
    monkeypatch.undo()
    # the last complete checkpoint survives the interrupted write
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert trainer_module.torch is torch
