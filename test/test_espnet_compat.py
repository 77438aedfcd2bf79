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


def test_fixed_resume_completes_the_epoch_its_checkpoint_ends(tiny_data_dir, tmp_path):
    """A kill between ``checkpoint.pth`` and ``1epoch.pth`` must not break the averaged model."""
    from espnet_prune.bin import diar_train
    from espnet_prune.diar.model_file import read_run_state

    exp = tmp_path / "exp"
    args = [
        "--train_data_path_and_name_and_type", f"{tiny_data_dir}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{tiny_data_dir}/wav.scp,speech,sound",
        "--chunk_size", "2.0", "--chunk_shift", "2.0", "--batch_size", "4",
        "--num_workers", "0", "--progress_bar", "false", "--seed", "0",
        "--frontend", "fbank", "--frontend_conf", "n_mels=40",
        "--encoder_conf", "output_size=16", "--encoder_conf", "linear_units=32",
        "--encoder_conf", "num_blocks=1", "--encoder_conf", "attention_heads=2",
        "--optim", "adamw", "--optim_conf", "lr=0.001", "--resume", "true",
        "--best_model_criterion", "valid,loss,min", "--keep_nbest_models", "2",
        "--output_dir", str(exp),
    ]  # fmt: skip
    assert diar_train.main([*args, "--max_epoch", "1"]) == 0
    # as if killed right after checkpoint.pth: the epoch's model file and links are not there
    for name in ("1epoch.pth", "latest.pth", "valid.loss.best.pth", "valid.loss.ave.pth",
                 "valid.loss.ave_1best.pth"):
        (exp / name).unlink()
    epoch1 = read_run_state(exp / "checkpoint.pth")["model"]  # weights_only reader

    assert diar_train.main([*args, "--max_epoch", "2"]) == 0
    restored = torch.load(exp / "1epoch.pth", map_location="cpu", weights_only=True)
    assert restored.keys() == epoch1.keys()
    assert all(torch.equal(restored[k], epoch1[k]) for k in epoch1)
    averaged = torch.load(exp / "valid.loss.ave.pth", map_location="cpu", weights_only=True)
    assert averaged.keys() == epoch1.keys()
    assert (exp / "latest.pth").resolve().name == "2epoch.pth"
