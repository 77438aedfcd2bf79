"""Powerset encoding, permutation-invariant loss and frame DER (no espnet2 import)."""

import itertools

import numpy as np
import pytest
import torch

from espnet_prune.diar.powerset import Powerset, frame_der


def test_eleven_classes_and_round_trip_of_every_class():
    powerset = Powerset(4, 2)
    assert powerset.num_classes == 11
    classes = torch.arange(powerset.num_classes)
    multilabel = powerset.to_multilabel(classes)
    # every class is a distinct speaker set of size <= 2, and all such sets are present
    sets = {tuple(np.flatnonzero(row.numpy())) for row in multilabel}
    expected = {c for n in range(3) for c in itertools.combinations(range(4), n)}
    assert sets == expected
    assert torch.equal(powerset.to_powerset(multilabel), classes)
    # log-probabilities peaked on each class give the same multi-label rows
    log_probs = torch.log_softmax(10.0 * torch.eye(11), dim=-1)
    assert torch.equal(powerset.to_multilabel(log_probs), multilabel)
    soft = powerset.to_multilabel(log_probs, soft=True)
    assert torch.allclose(soft, multilabel, atol=1e-3)


def test_other_sizes_and_too_many_active_speakers():
    assert Powerset(3, 2).num_classes == 7
    assert Powerset(4, 3).num_classes == 15
    powerset = Powerset(4, 2)
    three = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    # more active speakers than a class can hold: the first (most talkative) two are kept
    assert powerset.to_multilabel(powerset.to_powerset(three)).tolist() == [[1, 0, 1, 0]]
    with pytest.raises(ValueError):
        Powerset(2, 3)


def _random_case(seed, speakers=3, frames=50, batch=3):
    gen = torch.Generator().manual_seed(seed)
    log_probs = torch.log_softmax(torch.randn(batch, frames, 11, generator=gen) * 3, dim=-1)
    reference = (torch.rand(batch, frames, speakers, generator=gen) < 0.35).float()
    mask = torch.ones(batch, frames, dtype=torch.bool)
    mask[0, frames - 7 :] = False
    return log_probs, reference, mask


@pytest.mark.parametrize("speakers", [2, 3, 4])
def test_loss_is_invariant_to_permuting_reference_speakers(speakers):
    powerset = Powerset(4, 2)
    for seed in range(3):
        log_probs, reference, mask = _random_case(seed, speakers)
        loss, _ = powerset.permutation_invariant_loss(log_probs, reference, mask)
        for perm in itertools.permutations(range(speakers)):
            permuted, _ = powerset.permutation_invariant_loss(
                log_probs, reference[..., list(perm)], mask
            )
            assert torch.allclose(loss, permuted), (seed, perm)


def test_loss_uses_best_permutation_and_ignores_padding():
    powerset = Powerset(4, 2)
    log_probs, reference, mask = _random_case(1, speakers=4)
    loss, _ = powerset.permutation_invariant_loss(log_probs, reference, mask)
    # the prediction made from the reference with shuffled speakers is near-perfect
    perfect_idx = powerset.to_powerset(reference[..., [2, 0, 3, 1]])
    perfect = torch.log_softmax(20.0 * torch.nn.functional.one_hot(perfect_idx, 11).float(), -1)
    small, target = powerset.permutation_invariant_loss(perfect, reference, mask)
    assert small < 1e-6 < loss
    # padded frames do not count
    garbage = perfect.clone()
    garbage[0, -7:] = torch.log_softmax(torch.randn(7, 11), -1)
    assert torch.allclose(powerset.permutation_invariant_loss(garbage, reference, mask)[0], small)


def test_most_talkative_speakers_are_kept():
    powerset = Powerset(2, 1)
    reference = torch.zeros(1, 10, 3)
    reference[0, :2, 0] = 1  # 2 frames
    reference[0, 2:7, 1] = 1  # 5 frames
    reference[0, 7:10, 2] = 1  # 3 frames
    kept = powerset.fit_speakers(reference)
    assert kept.shape == (1, 10, 2)
    assert torch.equal(kept[0, :, 0], reference[0, :, 1])
    assert torch.equal(kept[0, :, 1], reference[0, :, 2])
    padded = Powerset(4, 2).fit_speakers(reference)
    assert padded.shape == (1, 10, 4) and padded[..., 3].sum() == 0


def test_frame_der_matches_pyannote_metrics():
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    powerset = Powerset(4, 2)
    gen = torch.Generator().manual_seed(3)
    frames = 60
    # blocky activity so the case has miss, false alarm and confusion
    ref = (torch.rand(1, frames // 5, 3, generator=gen) < 0.4).float().repeat_interleave(5, 1)
    hyp = (torch.rand(1, frames // 5, 3, generator=gen) < 0.4).float().repeat_interleave(5, 1)
    ref = torch.nn.functional.pad(ref, (0, 1))
    hyp = torch.nn.functional.pad(hyp, (0, 1))
    mask = torch.ones(1, frames, dtype=torch.bool)
    errors, speech = frame_der(hyp, ref, mask, powerset)

    def annotation(labels, prefix):
        ann = Annotation()
        for f in range(frames):
            for s in range(labels.shape[-1]):
                if labels[0, f, s]:
                    ann[Segment(f, f + 1), f"{f}-{s}"] = f"{prefix}{s}"
        return ann.support()

    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    uem = Annotation()
    uem[Segment(0, frames)] = "x"
    expected = metric(annotation(ref, "r"), annotation(hyp, "h"), uem=uem.get_timeline())
    assert float(errors / speech) == pytest.approx(expected, abs=1e-6)
