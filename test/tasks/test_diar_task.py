"""Batching of chunk keys in the diarization task (epoch shuffling, DDP sharding)."""

import pytest

from espnet_prune.errors import ConfigError


def sampler_class():
    from espnet_prune.tasks.chunked import ChunkBatchSampler

    return ChunkBatchSampler


def test_training_batches_are_reshuffled_per_epoch_and_cover_every_chunk():
    keys = [f"k{i:02d}" for i in range(10)]
    sampler = sampler_class()(keys, batch_size=4, shuffle=True)
    epoch1, epoch2 = sampler.generate(1), sampler.generate(2)
    assert [len(b) for b in epoch1] == [4, 4, 2]
    assert sorted(k for b in epoch1 for k in b) == keys
    assert epoch1 != epoch2 and sampler.generate(1) == epoch1  # reproducible for resume
    valid = sampler_class()(keys, batch_size=4, shuffle=False)
    assert valid.generate(1) == valid.generate(7) == [keys[:4], keys[4:8], keys[8:]]


def test_ddp_ranks_get_disjoint_shares_and_the_same_number_of_batches():
    keys = [f"k{i:02d}" for i in range(9)]
    shares = [sampler_class()(keys, 4, True, rank, 2).generate(3) for rank in range(2)]
    assert len(shares[0]) == len(shares[1]) == 2  # the 1-key tail joins the previous batch
    flat = [[k for b in share for k in b] for share in shares]
    assert not set(flat[0]) & set(flat[1]) and sorted(flat[0] + flat[1]) == keys
    with pytest.raises(ConfigError):
        sampler_class()(keys[:1], 4, True, 0, 2)
