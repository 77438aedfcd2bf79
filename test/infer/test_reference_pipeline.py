"""Our pipeline against the reference's inference steps (test/infer/reference_pipeline.py,
re-derived from DiariZen a60b181's code) on the same segmentation log-probabilities and the
same embeddings: the same RTTM, frame for frame.

The scripted segmentation (test/infer/scripted_cases.py) makes windows disagree, so the
per-frame count is a rounded mean of differing window counts, and the local speakers of a
window are shuffled, sometimes spurious (small clusters) or more than the clusters.
"""

from __future__ import annotations

import numpy as np
import pytest

from espnet_prune.diar.powerset import Powerset
from espnet_prune.infer.clustering import AgglomerativeClustering
from espnet_prune.infer.pipeline import DiarizationPipeline, InferenceConfig

from . import reference_pipeline as reference
from .scripted_cases import LENGTH, SHIFT, ScriptedCase, cases

CASES = list(cases(24))


def ours(case: ScriptedCase, **options):
    powerset = Powerset(4, 2)
    import torch

    pipeline = DiarizationPipeline(
        case.segmentation,
        lambda lp: powerset.to_multilabel(torch.from_numpy(np.asarray(lp))).numpy(),
        SHIFT, LENGTH, case, AgglomerativeClustering(0.7, 30),
        InferenceConfig(batch_size=16, max_speakers=20, **options),
    )
    return [(s.start, s.start + s.duration, int(s.speaker[3:]))
            for s in pipeline(case.audio, "rec")]


def theirs(case: ScriptedCase):
    segments = reference.diarize(case.log_probs, case.embed)
    # the reference writes segments as they are; ours are cut at the audio's end (none of
    # these cases speaks in the last 0.3 s)
    assert all(end <= case.duration for _, end, _ in segments)
    return segments


def assert_same_rttm(mine, ref, case):
    assert len(mine) == len(ref), (case.seed, len(mine), len(ref))
    def by_speaker(segments):
        return sorted(segments, key=lambda s: (s[2], s[0]))

    for a, b in zip(by_speaker(mine), by_speaker(ref)):
        # RTTM times have 1 ms resolution
        assert a[2] == b[2] and abs(a[0] - b[0]) < 1.5e-3 and abs(a[1] - b[1]) < 1.5e-3, \
            (case.seed, a, b)


@pytest.mark.parametrize(("seed", "num_speakers", "duration"), CASES,
                         ids=[f"seed{c[0]}-{c[1]}spk" for c in CASES])
def test_pipeline_gives_the_reference_rttm(seed, num_speakers, duration):
    case = ScriptedCase(seed, num_speakers, duration)
    assert_same_rttm(ours(case), theirs(case), case)


def test_count_and_frame_times_of_disagreeing_windows():
    """Three windows (9.6 s) that disagree on one speaker's run, worked out by hand.

    Global frame g of the window starting at 0.8·w s is its local frame g - 40·w. The speaker is
    active on global frames 100-199 in window 0, 98-199 in window 1 and 98-201 in window 2; all
    three windows cover frames 98-201. Count: 2/3 → 1 on 98-99, 3/3 → 1 on 100-199, 1/3 → 0 on
    200-201. So the speaker speaks on frames 98..199, written from the middle of frame 98
    (12.5 ms + 20 ms·98 = 1.9725 s) to the middle of frame 200 (4.0125 s). A count rounded up
    would end at 4.0525 s, rounded down start at 2.0125 s; a window placed one frame off, or the
    frame's hop instead of its middle, moves the boundaries by 20 or 10 ms.
    """
    import torch

    powerset = Powerset(4, 2)
    runs = {0: (100, 200), 1: (98, 200), 2: (98, 202)}  # global frames [on, off)
    audio = (0.1 * np.random.default_rng(5).standard_normal(153600)).astype(np.float32)
    starts = {int(12800 * w): w for w in runs}

    def window_of(samples):
        for start, w in starts.items():
            if np.array_equal(samples[:4096], audio[start : start + 4096]):
                return w
        raise AssertionError("unknown window")

    def segmentation(batch, lengths):
        out = np.full((len(batch), 399, 11), -30.0, dtype=np.float32)
        for row, samples in enumerate(batch):
            w = window_of(samples)
            local = np.zeros((399, 4), dtype=np.float32)
            on, off = runs[w]
            local[on - 40 * w : off - 40 * w, 1] = 1  # local speaker 1
            classes = powerset.to_powerset(torch.from_numpy(local)).numpy()
            out[row, np.arange(399), classes] = 0.0
        return out

    class Same:
        def embed_masked(self, windows, rows, masks):
            return np.ones((len(rows), 3))

    pipeline = DiarizationPipeline(
        segmentation, lambda lp: powerset.to_multilabel(torch.from_numpy(lp)).numpy(),
        SHIFT, LENGTH, Same(), AgglomerativeClustering(0.7, 30), InferenceConfig(batch_size=4))
    segments = pipeline(audio, "rec")
    assert len(segments) == 1
    assert segments[0].start == pytest.approx(1.9725, abs=1e-3)
    assert segments[0].start + segments[0].duration == pytest.approx(4.0125, abs=1e-3)


def test_the_last_window_is_padded_to_the_full_window():
    """The reference runs the zero-padded last window without lengths (pa/core/inference.py
    290-299, 330): the model gets every window at its full length."""
    seed, num_speakers, duration = CASES[0]
    case = ScriptedCase(seed, num_speakers, duration)
    ours(case)
    assert (len(case.audio) - case.starts[-1]) < 8 * 16000  # a partial last window
    assert case.lengths_seen == [8 * 16000] * len(case.starts)


def test_fewer_than_two_clean_embeddings_cluster_every_embedding():
    """Only one (window, speaker) has 10 % clean frames: the reference then clusters every
    embedding (pa/pipelines/clustering.py 143-146), here 2 speakers, where clustering the one
    clean embedding alone gives a single speaker."""
    local = np.zeros((2, 399, 4), dtype=bool)
    local[0, :, 0] = True  # speaker 0 throughout, speaker 1 on 20 frames of window 0
    local[0, 200:220, 1] = True
    local[1, :, 0] = True  # window 1: speaker 1 alone on 30 frames, else with speaker 0
    local[1, :, 1] = True
    local[1, 100:130, 0] = False
    case = ScriptedCase.from_windows(local, [[0, 1, -100, -100]] * 2, 8 * 16000 + 12800)
    ref = theirs(case)
    assert len({k for _, _, k in ref}) >= 2
    assert_same_rttm(ours(case), ref, case)


@pytest.fixture(scope="module")
def fork():
    """DiariZen's pyannote.audio fork, from DIARIZEN_REPO at the pinned commit."""
    from diarizen_reference import diarizen_repo

    from .diarizen_fork import load_fork

    return load_fork(diarizen_repo())


@pytest.mark.parametrize(("seed", "num_speakers", "duration"), CASES,
                         ids=[f"seed{c[0]}-{c[1]}spk" for c in CASES])
def test_the_forks_own_functions_give_the_same_rttm(fork, seed, num_speakers, duration):
    """With DIARIZEN_REPO: the fork's aggregate, speaker_count, AgglomerativeClustering,
    to_diarization and Binarize (not our re-derivation) on the same cases."""
    from scipy.ndimage import median_filter

    from .diarizen_fork import fork_diarize

    case = ScriptedCase(seed, num_speakers, duration)
    binary = median_filter(reference.hard_multilabel(case.log_probs).astype(np.float32),
                           size=(1, 11, 1), mode="reflect")
    embeddings = reference.embed_all(binary, case.embed, 0)
    segments, count, _ = fork_diarize(fork, binary, embeddings)
    ref, ref_count = reference.diarize(case.log_probs, case.embed, return_count=True)
    assert np.array_equal(count.data[:, 0], ref_count)
    assert_same_rttm(segments, ref, case)
    assert_same_rttm(ours(case), segments, case)
