import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.infer.clustering import (
    AgglomerativeClustering,
    VBxClustering,
    ahc_labels,
    assign,
    vbx,
)
from espnet_prune.infer.plda import Plda, estimate_plda


def accuracy(truth, labels):
    """Fraction of items on the best one-to-one label mapping."""
    table = np.zeros((truth.max() + 1, labels.max() + 1))
    np.add.at(table, (truth, labels), 1)
    rows, cols = linear_sum_assignment(-table)
    return table[rows, cols].sum() / len(truth)


def spherical(rng, num_speakers, per_speaker, dim=64, noise=0.35):
    centres = rng.normal(size=(num_speakers, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(num_speakers), per_speaker)
    x = centres[truth] + noise * rng.normal(size=(len(truth), dim)) / np.sqrt(dim)
    return x, truth


def nuisance(rng, num_speakers, per_speaker, dim=32, speaker_dims=4, noise=0.25, offset=0.5):
    """Speakers differ in a few dimensions only; a large within-speaker nuisance elsewhere."""
    truth = np.repeat(np.arange(num_speakers), per_speaker)
    centres = np.zeros((num_speakers, dim))
    centres[:, :speaker_dims] = rng.normal(size=(num_speakers, speaker_dims))
    x = centres[truth] + 0.1 * rng.normal(size=(len(truth), dim))
    x[:, speaker_dims:] += noise * rng.normal(size=(len(truth), dim - speaker_dims))
    return x + offset, truth


@pytest.mark.parametrize("num_speakers", [2, 3, 5])
def test_ahc_recovers_speakers(num_speakers):
    x, truth = spherical(np.random.default_rng(num_speakers), num_speakers, 40)
    labels = ahc_labels(x, threshold=0.7, min_cluster_size=30)
    assert labels.max() + 1 == num_speakers
    assert accuracy(truth, labels) == 1.0


def test_num_speakers_forces_the_count():
    x, truth = spherical(np.random.default_rng(0), 4, 30)
    for forced in (2, 4, 6):
        assert ahc_labels(x, 0.7, 5, num_clusters=forced).max() + 1 == forced
    assert ahc_labels(x, 0.7, 5, max_clusters=3).max() + 1 == 3
    assert ahc_labels(x, 0.7, 5, min_clusters=5).max() + 1 == 5
    centroids = AgglomerativeClustering(0.7, 5).centroids(x, num_speakers=3)
    assert centroids.shape == (3, 64)


def test_small_clusters_are_merged_into_large_ones():
    rng = np.random.default_rng(1)
    x, truth = spherical(rng, 2, 50)
    outlier = rng.normal(size=(2, 64))
    labels = ahc_labels(np.vstack([x, outlier]), threshold=0.7, min_cluster_size=10)
    assert labels.max() + 1 == 2


def test_assign_keeps_local_speakers_of_a_window_apart():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    embeddings = np.array([[1.0, 0.1], [1.0, 0.2], [0.9, 0.1]])
    assert assign(embeddings, centroids).tolist() == [0, 0, 0]
    groups = np.array([0, 0, 1])
    labels = assign(embeddings, centroids, groups)
    assert sorted(labels[:2].tolist()) == [0, 1] and labels[2] == 0


def test_a_window_with_more_speakers_than_centroids_drops_the_worst_matched():
    """The reference's constrained assignment (Hungarian over the window's speakers): with 3
    local speakers and 2 centroids the one that fits worst gets none (-1)."""
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    embeddings = np.array([[1.0, 0.05], [0.1, 1.0], [0.7, 0.7]])
    assert assign(embeddings, centroids, np.zeros(3, dtype=int)).tolist() == [0, 1, -1]
    # one centroid: one speaker per window keeps it
    assert assign(embeddings, centroids[:1], np.zeros(3, dtype=int)).tolist() == [0, -1, -1]


def test_a_small_cluster_joins_the_large_cluster_nearest_its_centroid_as_a_whole():
    """Two tight large clusters A (+x) and B (+y); a small cluster whose members lie one each
    side of the A/B bisector, its centroid on A's side: every member goes to A (the reference
    merges clusters by centroid, pyannote fork clustering.py 494-509), none to B."""
    rng = np.random.default_rng(3)
    a = np.array([1.0, 0.0, 0.0]) + 0.01 * rng.normal(size=(40, 3))
    b = np.array([0.0, 1.0, 0.0]) + 0.01 * rng.normal(size=(40, 3))
    small = np.array([[0.5, 0.6, 1.0], [0.8, 0.4, 1.0], [0.75, 0.45, 1.0]])
    labels = ahc_labels(np.vstack([a, b, small]), threshold=0.7, min_cluster_size=10)
    assert labels.max() + 1 == 2
    assert len(set(labels[80:])) == 1 and labels[80] == labels[0] != labels[40]
    # each member alone: the first is nearer to B
    unit = small / np.linalg.norm(small, axis=1, keepdims=True)
    assert unit[0] @ b.mean(0) / np.linalg.norm(b.mean(0)) > \
        unit[0] @ a.mean(0) / np.linalg.norm(a.mean(0))


def test_ahc_centroids_are_means_of_the_embeddings_as_given():
    """The reference's centroids average the raw embeddings (pyannote fork clustering.py
    213-220): a long vector weighs more than a short one of the same cluster."""
    x = np.array([[1.0, 0.0], [0.0, 10.0], [-5.0, -5.0], [-5.1, -5.0]])
    centroids = AgglomerativeClustering(threshold=1.9, min_cluster_size=1).centroids(x[:2])
    assert np.allclose(centroids, [[0.5, 5.0]])


def test_plda_whitens_within_speaker_covariance(tmp_path):
    rng = np.random.default_rng(2)
    x, truth = nuisance(rng, 60, 30, noise=0.6)
    plda = estimate_plda(x, truth, lda_dim=128)
    assert plda.lda_dim == 32  # scaled down to the embedding dimension
    y = plda.transform(x)
    within = np.cov(np.vstack([y[truth == s] - y[truth == s].mean(0) for s in range(60)]).T)
    assert np.allclose(np.diag(within), 1.0, atol=0.1)
    assert plda.phi[0] > 10 * plda.phi[10]  # speaker information in few dimensions
    plda.save(tmp_path / "plda.npz")
    loaded = Plda.load(tmp_path / "plda.npz")
    assert np.allclose(loaded.transform(x[:5]), y[:5])
    np.savez(tmp_path / "bad.npz", mean1=plda.mean1)
    with pytest.raises(CheckpointError, match="lacks key"):
        Plda.load(tmp_path / "bad.npz")


def test_vbx_elbo_does_not_decrease():
    rng = np.random.default_rng(3)
    x, truth = nuisance(rng, 40, 20)
    plda = estimate_plda(x, truth)
    test_x, _ = nuisance(rng, 3, 40)
    init = np.arange(len(test_x)) % 5
    _, _, elbos = vbx(plda.transform(test_x), plda.phi, init, max_iters=20)
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(elbos, elbos[1:]))


def test_vbx_improves_on_or_equals_ahc():
    # cosine AHC is misled by the within-speaker nuisance; the PLDA learnt on other speakers
    # discounts it, so VBx separates the speakers
    rng = np.random.default_rng(4)
    train_x, train_truth = nuisance(rng, 80, 20)
    plda = estimate_plda(train_x, train_truth)
    ahc_scores, vbx_scores = [], []
    for _ in range(4):
        x, truth = nuisance(rng, 3, 40)
        ahc = AgglomerativeClustering(0.7, 5)
        ahc_scores.append(accuracy(truth, assign(ahc.space(x), ahc.centroids(x))))
        vb = VBxClustering(plda)
        vbx_scores.append(accuracy(truth, assign(vb.space(x), vb.centroids(x))))
    assert all(v >= a for v, a in zip(vbx_scores, ahc_scores)), (vbx_scores, ahc_scores)
    assert np.mean(vbx_scores) > np.mean(ahc_scores) + 0.1, (vbx_scores, ahc_scores)
    # a forced count holds for VBx too
    assert len(vb.centroids(x, num_speakers=2)) == 2


def test_vbx_needs_plda():
    with pytest.raises(ConfigError, match="PLDA"):
        VBxClustering(None)
