"""Our Powerset against pyannote.audio's own (``pyannote/audio/utils/powerset.py``).

Same classes in the same order (by size, then lexicographic), so no mapping between the two is
needed. Ours returns class indices from ``to_powerset`` where pyannote returns their one-hot,
and also takes class indices in ``to_multilabel``. Soft multi-label input to ``to_powerset`` is
not compared: pyannote takes the class of largest overlap ("will not make much sense"), ours
thresholds at 0.5.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F
from pyannote_modules import pyannote_module

from espnet_prune.diar.powerset import Powerset

# (max_speakers_per_chunk, max_speakers_per_frame) = pyannote's (num_classes, max_set_size)
SIZES = [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 2), (4, 3), (4, 4), (5, 2), (6, 3)]
SEEDS = range(3)


def both(speakers: int, per_frame: int):
    theirs = pyannote_module("pyannote.audio.utils.powerset").Powerset(speakers, per_frame)
    return Powerset(speakers, per_frame), theirs


def random_shape(seed: int) -> tuple[int, ...]:
    """Batch and frame dimensions (also none) that vary with the seed."""
    return [(), (7,), (2, 31), (3, 2, 5)][seed % 4]


@pytest.mark.parametrize("speakers,per_frame", SIZES)
def test_classes_and_their_order_are_pyannotes(speakers, per_frame):
    ours, theirs = both(speakers, per_frame)
    assert ours.num_classes == theirs.num_powerset_classes
    assert torch.equal(ours.mapping, theirs.mapping)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("speakers,per_frame", SIZES)
def test_to_multilabel_is_pyannotes_hard_and_soft(speakers, per_frame, seed):
    ours, theirs = both(speakers, per_frame)
    gen = torch.Generator().manual_seed(seed)
    shape = random_shape(seed)
    logits = torch.randn(*shape, ours.num_classes, generator=gen) * (1.0 + 3.0 * seed)
    log_probs = torch.log_softmax(logits, dim=-1)
    assert torch.equal(ours.to_multilabel(log_probs), theirs.to_multilabel(log_probs))
    torch.testing.assert_close(
        ours.to_multilabel(log_probs, soft=True), theirs.to_multilabel(log_probs, soft=True)
    )
    # class indices (ours only) give what pyannote gives for their one-hot
    classes = torch.randint(ours.num_classes, shape, generator=gen)
    one_hot = F.one_hot(classes, ours.num_classes).float()
    assert torch.equal(ours.to_multilabel(classes), theirs.to_multilabel(one_hot))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("speakers,per_frame", SIZES)
def test_to_powerset_is_pyannotes_on_hard_activity(speakers, per_frame, seed):
    """Also with more active speakers than a class holds: both keep the lowest-index ones."""
    ours, theirs = both(speakers, per_frame)
    gen = torch.Generator().manual_seed(seed)
    shape = (*random_shape(seed), 40)
    for density in (0.2, 0.5, 0.9):
        multilabel = (torch.rand(*shape, speakers, generator=gen) < density).float()
        one_hot = F.one_hot(ours.to_powerset(multilabel), ours.num_classes)
        assert torch.equal(one_hot, theirs.to_powerset(multilabel))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("speakers,per_frame", [(2, 1), (3, 2), (4, 2), (4, 3)])
def test_pyannote_permutation_mapping_is_a_speaker_permutation_of_ours(speakers, per_frame, seed):
    """pyannote's ``permutation_mapping[perm]`` reorders powerset classes; for ours it is the
    same as reordering the speakers (multi-label columns) by ``perm``."""
    ours, theirs = both(speakers, per_frame)
    gen = torch.Generator().manual_seed(seed)
    log_probs = torch.log_softmax(torch.randn(5, 20, ours.num_classes, generator=gen), dim=-1)
    multilabel = ours.to_multilabel(torch.randint(ours.num_classes, (5, 20), generator=gen))
    mapping = theirs.permutation_mapping
    assert set(mapping) == set(itertools.permutations(range(speakers)))
    for perm, classes in mapping.items():
        perm, classes = list(perm), list(classes)
        torch.testing.assert_close(
            ours.to_multilabel(log_probs[..., classes], soft=True),
            ours.to_multilabel(log_probs, soft=True)[..., perm],
        )
        assert torch.equal(ours.to_multilabel(log_probs[..., classes]),
                           ours.to_multilabel(log_probs)[..., perm])
        permuted = ours.to_powerset(multilabel[..., perm])
        assert torch.equal(torch.tensor(classes)[permuted], ours.to_powerset(multilabel))
