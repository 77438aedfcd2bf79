import sys

import numpy as np
import pytest

from espnet_prune.errors import DataError
from espnet_prune.eval.scoring import (
    find_md_eval,
    merge_speaker_overlaps,
    run_md_eval,
    score,
)
from espnet_prune.utils.rttm import RttmSegment

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from rttm_cases import make_cases  # noqa: E402

MD_EVAL = find_md_eval()
needs_md_eval = pytest.mark.skipif(
    MD_EVAL is None, reason="md-eval.pl not installed (Debian/Ubuntu package 'sctk')"
)


def seg(rec, start, end, spk):
    return RttmSegment(rec, start, end - start, spk)


def test_hand_computed_case():
    # ref: A 0-10, B 5-15 (5 s overlap); hyp: s1 0-10, s2 10-15 -> B's 5-10 is missed
    ref = {"r": [seg("r", 0, 10, "A"), seg("r", 5, 15, "B")]}
    hyp = {"r": [seg("r", 0, 10, "s1"), seg("r", 10, 15, "s2")]}
    scores = score(ref, hyp, uem={"r": [(0.0, 15.0)]})
    rates = scores["per_recording"]["r"]
    assert rates["der"] == pytest.approx(5 / 20)
    assert rates["miss"] == pytest.approx(5 / 20)
    assert rates["false_alarm"] == pytest.approx(0.0)
    assert rates["confusion"] == pytest.approx(0.0)
    # JER: A perfect (0), B: 5 s hit out of 10 s union -> 0.5; mean 0.25
    assert rates["jer"] == pytest.approx(0.25)
    assert scores["overall"]["der"] == pytest.approx(0.25)


def test_confusion_and_false_alarm_and_uem_gap():
    ref = {"r": [seg("r", 0, 4, "A"), seg("r", 4, 8, "B")]}
    hyp = {"r": [seg("r", 0, 6, "x"), seg("r", 6, 10, "y")]}
    # UEM skips 2-3 s: scored ref time = 7 s; 4-6 confused (2 s); 8-10 false alarm (2 s)
    rates = score(ref, hyp, uem={"r": [(0.0, 2.0), (3.0, 10.0)]})["per_recording"]["r"]
    assert rates["confusion"] == pytest.approx(2 / 7)
    assert rates["false_alarm"] == pytest.approx(2 / 7)
    assert rates["miss"] == pytest.approx(0.0)


def test_without_uem_scores_extent_of_ref_and_hyp():
    ref = {"r": [seg("r", 1, 5, "A")]}
    hyp = {"r": [seg("r", 1, 5, "x"), seg("r", 7, 9, "x")]}
    rates = score(ref, hyp)["per_recording"]["r"]
    assert rates["false_alarm"] == pytest.approx(2 / 4)  # hyp beyond the last ref turn counts


def test_missing_recording_in_hypothesis_is_all_missed():
    ref = {"a": [seg("a", 0, 4, "A")], "b": [seg("b", 0, 6, "B")]}
    hyp = {"a": [seg("a", 0, 4, "x")]}
    scores = score(ref, hyp, uem={"a": [(0.0, 4.0)], "b": [(0.0, 6.0)]})
    assert scores["per_recording"]["b"]["miss"] == pytest.approx(1.0)
    assert scores["overall"]["der"] == pytest.approx(6 / 10)


def test_uem_without_reference_recording_is_an_error():
    ref = {"a": [seg("a", 0, 4, "A")]}
    with pytest.raises(DataError, match="UEM has no entry"):
        score(ref, ref, uem={"b": [(0.0, 4.0)]})


def test_same_speaker_overlaps_are_merged():
    merged = merge_speaker_overlaps({"r": [seg("r", 0, 3, "A"), seg("r", 2, 5, "A")]})
    assert merged["r"] == [RttmSegment("r", 0, 5, "A")]


@needs_md_eval
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_md_eval_at_collar_0(seed):
    ref, hyp, uem = make_cases(seed)
    ours = score(ref, hyp, uem=uem, collar=0.0)
    _, md_der = run_md_eval(merge_speaker_overlaps(ref), merge_speaker_overlaps(hyp), uem, 0.0)
    for rec, rates in ours["per_recording"].items():
        assert abs(rates["der"] - md_der[rec]) * 100 <= 0.01, rec
    assert abs(ours["overall"]["der"] - md_der["ALL"]) * 100 <= 0.01
    # the cases do exercise all error types
    assert min(ours["overall"][k] for k in ("miss", "false_alarm", "confusion")) > 0.02


@needs_md_eval
def test_md_eval_scorer_without_uem_scores_the_same_region():
    ref, hyp, _ = make_cases(3, num_recordings=3)
    ours = score(ref, hyp, collar=0.0)
    theirs = score(ref, hyp, collar=0.0, scorer="md-eval")
    assert theirs["per_recording"].keys() == ours["per_recording"].keys()
    for rec in ours["per_recording"]:
        assert abs(ours["per_recording"][rec]["der"] - theirs["per_recording"][rec]["der"]) < 1e-4


@needs_md_eval
def test_collar_convention_md_eval_c025_is_pyannote_collar_05():
    ref, hyp, uem = make_cases(4)
    merged_ref, merged_hyp = merge_speaker_overlaps(ref), merge_speaker_overlaps(hyp)
    _, md_der = run_md_eval(merged_ref, merged_hyp, uem, collar=0.5)  # passes -c 0.25
    total_width = score(ref, hyp, uem=uem, collar=0.5)["overall"]["der"]
    each_side = score(ref, hyp, uem=uem, collar=0.25)["overall"]["der"]
    assert abs(total_width - md_der["ALL"]) < abs(each_side - md_der["ALL"])
    assert abs(total_width - md_der["ALL"]) < 0.01  # differs, but by far less than 1 % here


def test_rates_are_fractions_with_the_documented_keys():
    ref, hyp, uem = make_cases(5, num_recordings=2)
    scores = score(ref, hyp, uem=uem)
    keys = {"der", "miss", "false_alarm", "confusion", "jer"}
    assert set(scores) == {"overall", "per_recording"}
    assert set(scores["overall"]) == keys
    for rates in scores["per_recording"].values():
        assert set(rates) == keys
        assert 0 <= rates["jer"] <= 1
        parts = rates["miss"] + rates["false_alarm"] + rates["confusion"]
        assert rates["der"] == pytest.approx(parts)
    assert np.isfinite(scores["overall"]["der"])
