"""The paper configs' training settings that match the reference's model shape and data
loaders: the Conformer without ESPnet's final LayerNorm and with PyTorch's LayerNorm eps,
the reference's batch sizes, and partial last batches dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

CONF = Path(__file__).resolve().parents[2] / "egs2/TEMPLATE/diar1/conf"
TRAIN = {  # name: (batch_size, valid_batch_size) over all GPUs in the reference
    "train_teacher_wavlm_base_plus.yaml": (64, 32),  # 16 / 8 per GPU x 4
    "train_teacher_wavlm_large.yaml": (64, 32),
    "train_pruned_wavlm_base_plus.yaml": (64, 64),  # 16 / 16 per GPU x 4
    "train_pruned_wavlm_large.yaml": (64, 64),
    "train_fbank.yaml": (32, 32),  # 16 / 16 per GPU x 2
}


def tiny_wavlm(path):
    from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), path)
    return path


@pytest.mark.parametrize("name", sorted(TRAIN))
def test_training_configs_build_the_reference_conformer_and_batches(name, tmp_path):
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    extra = ["--config", str(CONF / name)]
    if "wavlm" in name:
        extra += ["--frontend_conf", f"path={tiny_wavlm(tmp_path / 'w.pt')}"]
    args = PowersetDiarizationTask.get_parser().parse_args(extra)
    assert (args.batch_size, args.valid_batch_size) == TRAIN[name]
    assert args.drop_last is True
    encoder = PowersetDiarizationTask.build_model(args).encoder
    assert isinstance(encoder.after_norm, torch.nn.Identity)
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.eps == 1e-5 for m in norms)


@pytest.mark.parametrize("name", ["prune_s80.yaml", "prune_s90.yaml", "prune_large_s80.yaml",
                                  "prune_large_s90.yaml", "distill_post.yaml"])
def test_pruning_configs_validate_with_the_reference_batches(name):
    from espnet_prune.tasks.distill_prune import DistillPruneTask

    args = DistillPruneTask.get_parser().parse_args(["--config", str(CONF / name)])
    assert args.drop_last is True
    # the reference validates 16 chunks per GPU on 4 GPUs in every pruning stage
    assert (args.valid_batch_size or args.batch_size) == 64


def test_drop_last_leaves_out_only_a_partial_last_batch():
    from espnet_prune.tasks.chunked import ChunkBatchSampler

    keys = [f"k{i:02d}" for i in range(10)]
    assert [len(b) for b in ChunkBatchSampler(keys, 4, True, drop_last=True).generate(1)] == [4, 4]
    assert [len(b) for b in ChunkBatchSampler(keys, 5, True, drop_last=True).generate(1)] == [5, 5]
    # a single (partial) batch is kept: an epoch is never empty
    assert [len(b) for b in ChunkBatchSampler(keys, 16, False, drop_last=True).generate(0)] == [10]
    assert [len(b) for b in ChunkBatchSampler(keys, 4, True).generate(1)] == [4, 4, 2]
