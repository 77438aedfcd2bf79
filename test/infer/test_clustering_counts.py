"""Speaker counts of AHC and VBx: a requested count is met exactly, bounds are respected.

Property tests on generated embedding sets: well separated Gaussian clusters on the unit sphere,
1-8 speakers, cluster sizes from 1 to 40 (small clusters on purpose), dimension 32-256. With
``num_speakers`` = the true count the clustering must give back the true partition exactly;
with bounds the count must lie inside them; with more speakers asked than there are distinct
embeddings a warning is given and every distinct embedding is its own speaker.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from espnet_prune.errors import ConfigError
from espnet_prune.infer.clustering import (
    AgglomerativeClustering,
    VBxClustering,
    ahc_labels,
    assign,
    check_speaker_bounds,
)
from espnet_prune.infer.plda import estimate_plda

DIMS = (32, 48, 64, 128, 256)
NOISE = 0.3  # per-embedding noise norm; cluster centres are at least 0.89 apart
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def centres(rng: np.random.Generator, num: int, dim: int, max_cos: float = 0.6) -> np.ndarray:
    """``num`` unit vectors with pairwise cosine below ``max_cos`` (rejection sampling)."""
    while True:
        c = rng.normal(size=(num, dim))
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        cos = c @ c.T - 2 * np.eye(num)
        if cos.max() < max_cos:
            return c


def sphere_clusters(seed: int, sizes: list[int], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length embeddings around well separated centres, shuffled; (x, truth)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    noise = NOISE * rng.normal(size=(len(truth), dim)) / np.sqrt(dim)
    x = centres(rng, len(sizes), dim)[truth] + noise
    order = rng.permutation(len(truth))
    x = x[order] / np.linalg.norm(x[order], axis=1, keepdims=True)
    return x, truth[order]


def same_partition(truth: np.ndarray, labels: np.ndarray) -> bool:
    """True when ``labels`` is ``truth`` up to a renaming of the clusters."""
    pairs = set(zip(truth.tolist(), labels.tolist()))
    return len(pairs) == len(set(truth.tolist())) == len(set(labels.tolist()))


@functools.cache
def plda_for(dim: int):
    """A PLDA trained on other speakers of the same generator (enough of them for every dim)."""
    speakers = max(2 * dim, 100)
    x, truth = sphere_clusters(10_000 + dim, [8] * speakers, dim)
    return estimate_plda(x, truth)


sizes_strategy = st.lists(
    st.one_of(st.integers(1, 3), st.integers(4, 40)), min_size=1, max_size=8
)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("num", "lo", "hi", "match"),
    [
        (0, None, None, "num_speakers must be"),
        (-3, None, None, "num_speakers must be"),
        (None, 0, None, "min_speakers must be"),
        (None, None, -1, "max_speakers must be"),
        (2.5, None, None, "whole number"),
        ("2", None, None, "whole number"),
        (True, None, None, "whole number"),
        (None, 5, 2, "min_speakers=5 is larger than max_speakers=2"),
        (4, 5, None, "num_speakers=4 conflicts"),
        (4, None, 3, "num_speakers=4 conflicts"),
        (4, 1, 3, "num_speakers=4 conflicts"),
    ],
)
def test_invalid_speaker_bounds_are_refused(num, lo, hi, match):
    with pytest.raises(ConfigError, match=match):
        check_speaker_bounds(num, lo, hi)
    x, _ = sphere_clusters(0, [5, 5], 32)
    with pytest.raises(ConfigError, match=match):  # the clusterings check too
        AgglomerativeClustering().centroids(x, num, lo, hi)


@pytest.mark.parametrize(
    ("num", "lo", "hi"), [(None, None, None), (1, None, None), (50, None, None), (3, 1, 8),
                          (None, 2, 2), (None, 1, None), (None, None, 1), (np.int64(2), None, None)]
)
def test_valid_speaker_bounds_pass(num, lo, hi):
    check_speaker_bounds(num, lo, hi)


# ---------------------------------------------------------------- AHC


@settings(max_examples=150, **SETTINGS)
@given(sizes=sizes_strategy, dim=st.sampled_from(DIMS), seed=st.integers(0, 2**31),
       threshold=st.sampled_from([0.1, 0.7, 1.5]), min_size=st.sampled_from([1, 5, 30]))
def test_ahc_num_speakers_recovers_the_true_partition(sizes, dim, seed, threshold, min_size):
    # whatever the threshold and minimum cluster size, the requested count decides
    x, truth = sphere_clusters(seed, sizes, dim)
    num = len(sizes)
    labels = ahc_labels(x, threshold=threshold, min_cluster_size=min_size, num_clusters=num)
    assert same_partition(truth, labels), (sizes, np.bincount(labels))
    clustering = AgglomerativeClustering(threshold=threshold, min_cluster_size=min_size)
    centroids = clustering.centroids(x, num_speakers=num)
    assert len(centroids) == num
    assert same_partition(truth, assign(clustering.space(x), centroids))


@settings(max_examples=100, **SETTINGS)
@given(sizes=sizes_strategy, dim=st.sampled_from(DIMS), seed=st.integers(0, 2**31),
       lo=st.one_of(st.none(), st.integers(1, 9)), width=st.one_of(st.none(), st.integers(0, 4)),
       threshold=st.sampled_from([0.1, 0.7, 1.5]), min_size=st.sampled_from([1, 5, 30]))
def test_ahc_count_lies_inside_the_bounds(sizes, dim, seed, lo, width, threshold, min_size):
    x, _ = sphere_clusters(seed, sizes, dim)
    hi = None if width is None else (lo or 1) + width
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lo above the number of embeddings warns
        count = len(AgglomerativeClustering(threshold, min_size).centroids(x, None, lo, hi))
    assert count <= len(x)
    assert lo is None or count >= min(lo, len(x))
    assert hi is None or count <= hi


@pytest.mark.parametrize("method", ["ahc", "vbx"])
def test_more_speakers_than_embeddings_warns_and_gives_each_its_own(method):
    x, truth = sphere_clusters(1, [2, 3, 1], 32)  # 6 embeddings
    clustering = (AgglomerativeClustering() if method == "ahc" else VBxClustering(plda_for(32)))
    with pytest.warns(UserWarning, match="50 speakers requested but only 6 distinct"):
        centroids = clustering.centroids(x, num_speakers=50)
    assert len(centroids) == 6
    duplicated = np.vstack([x, x[:2]])  # still 6 distinct embeddings
    with pytest.warns(UserWarning, match="only 6 distinct"):
        assert len(clustering.centroids(duplicated, min_speakers=7)) == 6
    with pytest.warns(UserWarning, match="2 speakers requested but only 1 distinct"):
        assert len(clustering.centroids(x[:1], num_speakers=2)) == 1


def test_ahc_empty_and_single_embedding():
    assert ahc_labels(np.zeros((0, 8)), 0.7, num_clusters=3).shape == (0,)
    assert ahc_labels(np.ones((1, 8)), 0.7, num_clusters=1).tolist() == [0]


def test_the_reported_13_embedding_case():
    # the report: 13 embeddings of a 4-speaker meeting, num_speakers 2 gave one speaker and 4
    # gave two; every count from 1 to 13 must now be met exactly
    x, truth = sphere_clusters(7, [5, 4, 3, 1], 64)
    for num in range(1, 14):
        labels = ahc_labels(x, 0.7, 30, num_clusters=num)
        assert labels.max() + 1 == num == len(np.unique(labels))
    assert same_partition(truth, ahc_labels(x, 0.7, 30, num_clusters=4))


# ---------------------------------------------------------------- VBx


@settings(max_examples=60, **SETTINGS)
@given(sizes=sizes_strategy, dim=st.sampled_from(DIMS), seed=st.integers(0, 2**31))
def test_vbx_num_speakers_recovers_the_true_partition(sizes, dim, seed):
    x, truth = sphere_clusters(seed, sizes, dim)
    clustering = VBxClustering(plda_for(dim))
    centroids = clustering.centroids(x, num_speakers=len(sizes))
    assert len(centroids) == len(sizes)
    labels = assign(clustering.space(x), centroids)
    assert same_partition(truth, labels), (sizes, np.bincount(labels, minlength=len(sizes)))


@settings(max_examples=60, **SETTINGS)
@given(sizes=sizes_strategy, dim=st.sampled_from(DIMS), seed=st.integers(0, 2**31),
       lo=st.one_of(st.none(), st.integers(1, 9)), width=st.one_of(st.none(), st.integers(0, 4)))
def test_vbx_count_lies_inside_the_bounds(sizes, dim, seed, lo, width):
    x, _ = sphere_clusters(seed, sizes, dim)
    hi = None if width is None else (lo or 1) + width
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        count = len(VBxClustering(plda_for(dim)).centroids(x, None, lo, hi))
    assert count <= len(x)
    assert lo is None or count >= min(lo, len(x))
    assert hi is None or count <= hi


@settings(max_examples=40, **SETTINGS)
@given(sizes=sizes_strategy, dim=st.sampled_from(DIMS), seed=st.integers(0, 2**31),
       fraction=st.floats(0.0, 1.0))
def test_any_feasible_count_is_met_exactly(sizes, dim, seed, fraction):
    # any count from 1 to the number of embeddings, not only the true one
    x, _ = sphere_clusters(seed, sizes, dim)
    num = 1 + int(fraction * (len(x) - 1))
    assert len(AgglomerativeClustering(0.7, 30).centroids(x, num_speakers=num)) == num
    assert len(VBxClustering(plda_for(dim)).centroids(x, num_speakers=num)) == num


@settings(max_examples=25, **SETTINGS)
@given(sizes=sizes_strategy, dim=st.sampled_from(DIMS), seed=st.integers(0, 2**31))
def test_vbx_that_merges_speakers_still_meets_the_count(sizes, dim, seed):
    # Fa 0.01 / Fb 10 make VBx keep one speaker: the count then comes from the tree cut
    x, truth = sphere_clusters(seed, sizes, dim)
    clustering = VBxClustering(plda_for(dim), fa=0.01, fb=10.0)
    centroids = clustering.centroids(x, num_speakers=len(sizes))
    assert len(centroids) == len(sizes)
    assert same_partition(truth, assign(clustering.space(x), centroids))
