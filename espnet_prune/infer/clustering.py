"""Global speaker clustering of local speaker embeddings: agglomerative (AHC) and VBx.

Both give centroids in their own scoring space (``.space(embeddings)``: unit-length
embeddings for AHC, the PLDA space for VBx); the pipeline then assigns every (window, local
speaker) embedding to a centroid, including the embeddings left out of clustering because
their window had too little single-speaker speech. VBx follows Landini et al., "Bayesian HMM
clustering of x-vector sequences (VBx) in speaker diarization" (CSL 2022), in its variant
without HMM transitions, on PLDA-whitened embeddings (see :mod:`espnet_prune.infer.plda`).
``vbx`` is our own rather than pyannote.audio's ``utils/vbx.py`` (its import cost: see
:mod:`espnet_prune.diar.powerset`): the same updates, the log-prior floor included
(``log(pi + 1e-8)``), equal to pyannote's to 1e-10 (test/infer/test_vbx_pyannote.py).

Speaker counts: ``num_speakers`` gives exactly that many centroids, ``min_speakers`` /
``max_speakers`` bound the count (see :func:`check_speaker_bounds` for what is refused). A
count above the number of distinct embeddings cannot be met: a ``UserWarning`` is given and
every distinct embedding becomes its own speaker.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, softmax

from espnet_prune.errors import ConfigError


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def check_speaker_bounds(
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> None:
    """Refuse speaker counts that cannot be honoured, with a one-line :class:`ConfigError`.

    Each given value must be a whole number >= 1; ``min_speakers <= max_speakers``; a
    ``num_speakers`` given together with bounds must lie inside them (it then decides alone).
    A count larger than the number of embeddings is valid here: the clustering then warns and
    gives every distinct embedding its own speaker.
    """
    values = {"num_speakers": num_speakers, "min_speakers": min_speakers,
              "max_speakers": max_speakers}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise ConfigError(
            f"min_speakers={min_speakers} is larger than max_speakers={max_speakers}"
        )
    if num_speakers is not None and (
        (min_speakers is not None and num_speakers < min_speakers)
        or (max_speakers is not None and num_speakers > max_speakers)
    ):
        given = ", ".join(
            f"{name}={value}" for name, value in values.items()
            if value is not None and name != "num_speakers"
        )
        raise ConfigError(
            f"num_speakers={num_speakers} conflicts with {given}; give the count or the bounds"
        )


def _target_count(found: int, num: int | None, lo: int | None, hi: int | None) -> int:
    """The count to deliver: ``num`` if given, else ``found`` clipped into ``[lo, hi]``."""
    if num is not None:
        return int(num)
    if lo is not None and found < lo:
        return int(lo)
    if hi is not None and found > hi:
        return int(hi)
    return found


def _available(target: int, x: np.ndarray) -> int:
    """``target`` capped at the number of distinct embeddings (with a warning)."""
    distinct = len(np.unique(x, axis=0)) if len(x) else 0
    if target > distinct:
        warnings.warn(
            f"{target} speakers requested but only {distinct} distinct speaker embeddings; "
            f"giving {distinct} speaker(s)",
            UserWarning,
            stacklevel=3,
        )
        return max(distinct, 1) if len(x) else 0
    return target


def cut_tree(tree: np.ndarray, num_clusters: int) -> np.ndarray:
    """Labels 0..K-1 of the partition after the first ``N - num_clusters`` merges of ``tree``.

    Exactly ``num_clusters`` clusters for any ``1 <= num_clusters <= N``, also for centroid
    linkage, whose merge heights are not monotonic (a cut by height or scipy's ``maxclust`` can
    then give fewer clusters than asked: the reported "2 speakers asked, 1 given").
    """
    num = len(tree) + 1
    by_order = tree.copy()
    by_order[:, 2] = np.arange(num - 1)  # heights = merge order: monotonic
    labels = fcluster(by_order, num - num_clusters - 0.5, criterion="distance") - 1
    return np.unique(labels, return_inverse=True)[1]


def _centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.stack([x[labels == k].mean(0) for k in np.unique(labels)])


def ahc_labels(
    embeddings: np.ndarray,
    threshold: float,
    min_cluster_size: int = 1,
    num_clusters: int | None = None,
    min_clusters: int | None = None,
    max_clusters: int | None = None,
) -> np.ndarray:
    """Centroid-linkage AHC on unit-length embeddings (euclidean), labels 0..K-1.

    Without a count, the dendrogram is cut at ``threshold`` and clusters smaller than
    ``min_cluster_size`` (capped at 10 % of the embeddings, so that short recordings keep their
    speakers) are merged into the nearest large cluster. When that count differs from
    ``num_clusters``, or lies outside ``[min_clusters, max_clusters]``, the dendrogram is cut
    where it has exactly the requested (or nearest allowed) number of clusters, small ones
    included: a speaker asked for is kept even when it has few embeddings. More clusters than
    distinct embeddings cannot be made: then a warning, and one cluster per distinct embedding.
    """
    check_speaker_bounds(num_clusters, min_clusters, max_clusters)
    num = len(embeddings)
    if num == 0:
        return np.zeros(0, dtype=int)
    x = l2_normalize(embeddings.astype(np.float64))
    if num == 1:
        _available(_target_count(1, num_clusters, min_clusters, max_clusters), x)
        return np.zeros(1, dtype=int)
    tree = linkage(x, method="centroid", metric="euclidean")
    min_size = max(1, min(min_cluster_size, round(0.1 * num)))

    labels = fcluster(tree, threshold, criterion="distance") - 1
    sizes = np.bincount(labels)
    large = np.flatnonzero(sizes >= min_size)
    small = np.flatnonzero((sizes > 0) & (sizes < min_size))
    if len(large) == 0:
        labels = np.zeros(num, dtype=int)
    else:
        # as the reference (pyannote fork clustering.py 490-513): each small cluster as a
        # whole joins the large cluster whose centroid is nearest (cosine) to its own centroid
        if len(small):
            large_centroids = l2_normalize(np.stack([x[labels == k].mean(0) for k in large]))
            small_centroids = l2_normalize(np.stack([x[labels == k].mean(0) for k in small]))
            nearest = large[np.argmax(small_centroids @ large_centroids.T, axis=1)]
            mapping = np.arange(len(sizes))
            mapping[small] = nearest
            labels = mapping[labels]
        labels = np.unique(labels, return_inverse=True)[1]
    found = int(labels.max()) + 1
    target = _target_count(found, num_clusters, min_clusters, max_clusters)
    if target == found:
        return labels
    target = _available(target, x)
    if target == found:
        return labels
    return cut_tree(tree, target)


def vbx(
    features: np.ndarray,
    phi: np.ndarray,
    init_labels: np.ndarray,
    fa: float = 0.07,
    fb: float = 0.8,
    max_iters: int = 20,
    init_smoothing: float = 7.0,
    epsilon: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Variational Bayes clustering of PLDA-whitened ``features`` [T, D].

    Model: x_t = V y_s + e_t with e_t ~ N(0, I), y_s ~ N(0, I), V = diag(sqrt(phi)); ``fa`` scales
    the acoustic likelihoods, ``fb`` the speaker-model prior. Returns responsibilities
    gamma [T, S], speaker priors pi [S] and the ELBO after every iteration.
    """
    t_len, dim = features.shape
    gamma = np.zeros((t_len, int(init_labels.max()) + 1))
    gamma[np.arange(t_len), init_labels] = 1.0
    gamma = softmax(gamma * init_smoothing, axis=1)
    pi = np.full(gamma.shape[1], 1.0 / gamma.shape[1])
    sqrt_phi = np.sqrt(phi)
    rho = features * sqrt_phi  # x_t^T V, [T, D]
    const = -0.5 * (np.sum(features**2, axis=1, keepdims=True) + dim * np.log(2 * np.pi))
    elbos: list[float] = []
    for _ in range(max_iters):
        counts = gamma.sum(0)  # [S]
        precision = 1.0 + (fa / fb) * counts[:, None] * phi  # L_s (diagonal), [S, D]
        alpha = (fa / fb) * (gamma.T @ rho) / precision  # posterior means, [S, D]
        log_lik = fa * (
            rho @ alpha.T - 0.5 * ((alpha**2 + 1.0 / precision) @ phi)[None, :] + const
        )
        log_joint = log_lik + np.log(pi + 1e-8)  # as pyannote/DiariZen's VBx
        log_evidence = logsumexp(log_joint, axis=1, keepdims=True)
        gamma = np.exp(log_joint - log_evidence)
        pi = gamma.sum(0) / t_len
        kl = 0.5 * fb * np.sum(np.log(precision) + 1.0 / precision + alpha**2 - 1.0)
        elbos.append(float(log_evidence.sum() - kl))
        if len(elbos) > 1 and elbos[-1] - elbos[-2] < epsilon:
            break
    return gamma, pi, elbos


class AgglomerativeClustering:
    """Centroid-linkage AHC (the recipe's clustering: threshold 0.70, min cluster size 30)."""

    def __init__(self, threshold: float = 0.7, min_cluster_size: int = 30):
        self.threshold = threshold
        self.min_cluster_size = min_cluster_size

    def space(self, embeddings: np.ndarray) -> np.ndarray:
        """Where centroids live and assignments are scored (cosine): unit-length embeddings."""
        return l2_normalize(embeddings)

    def centroids(
        self,
        embeddings: np.ndarray,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> np.ndarray:
        labels = ahc_labels(
            embeddings, self.threshold, self.min_cluster_size, num_speakers, min_speakers,
            max_speakers,
        )
        if len(labels) == 0:
            return np.zeros((0, np.shape(embeddings)[-1]))
        # the mean of the embeddings as extracted, not of their unit-length versions, as the
        # reference's assignment step (pyannote fork clustering.py 213-220)
        return _centroids(np.asarray(embeddings, dtype=np.float64), labels)


class VBxClustering:
    """AHC initialisation (threshold 0.6) refined by VBx (Fa 0.07, Fb 0.8, 20 iterations)."""

    def __init__(
        self,
        plda,
        threshold: float = 0.6,
        fa: float = 0.07,
        fb: float = 0.8,
        max_iters: int = 20,
        min_speaker_prior: float = 1e-7,
    ):
        if plda is None:
            raise ConfigError(
                "VBx clustering needs a PLDA model: estimate one from training embeddings "
                "(espnet_prune.infer.plda.estimate_plda) or give its .npz file"
            )
        self.plda = plda
        self.threshold, self.fa, self.fb = threshold, fa, fb
        self.max_iters, self.min_speaker_prior = max_iters, min_speaker_prior

    def space(self, embeddings: np.ndarray) -> np.ndarray:
        """Where centroids live and assignments are scored (cosine): the PLDA space."""
        return self.plda.transform(np.asarray(embeddings, dtype=np.float64))

    def centroids(
        self,
        embeddings: np.ndarray,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> np.ndarray:
        """VBx centroids in the PLDA space; a count VBx does not reach by itself is imposed.

        VBx has no count constraint. When its count differs from ``num_speakers`` or lies
        outside the bounds, the dendrogram of the unit-length PLDA-space features is cut where
        it has exactly the target count (as for AHC) and VBx is run again from that partition;
        the centroids are those of VBx's hard decisions when they still use every speaker, else
        those of the cut (pyannote/DiariZen re-cluster with k-means here instead).
        """
        check_speaker_bounds(num_speakers, min_speakers, max_speakers)
        features = self.space(embeddings)
        if len(features) < 2:
            if len(features):
                _available(_target_count(1, num_speakers, min_speakers, max_speakers), features)
            return features.copy()
        gamma = self._vbx(features, ahc_labels(embeddings, self.threshold))
        gamma = gamma[:, np.unique(np.argmax(gamma, axis=1))]  # speakers that win an embedding
        found = gamma.shape[1]
        target = _target_count(found, num_speakers, min_speakers, max_speakers)
        if target != found:
            target = _available(target, features)
        if target != found:
            labels = cut_tree(linkage(l2_normalize(features), method="centroid"), target)
            refined = np.argmax(self._vbx(features, labels), axis=1)
            if len(np.unique(refined)) == target:
                labels = refined
            return _centroids(features, labels)
        weights = gamma / np.maximum(gamma.sum(0, keepdims=True), 1e-12)
        return weights.T @ features

    def _vbx(self, features: np.ndarray, init: np.ndarray) -> np.ndarray:
        """Responsibilities of the speakers VBx keeps (prior above ``min_speaker_prior``)."""
        gamma, pi, _ = vbx(
            features, self.plda.phi, init, self.fa, self.fb, max_iters=self.max_iters
        )
        return gamma[:, pi > self.min_speaker_prior]


def assign(
    embeddings: np.ndarray, centroids: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    """Nearest centroid (cosine) per embedding; within a group (the local speakers of one
    window) no two embeddings get the same centroid: the group's assignment is the one with
    the highest total similarity (Hungarian). A group with more members than centroids keeps
    only the best-matched ones; the others get label -1 (their activity is dropped), as the
    reference's constrained assignment (pyannote fork clustering.py 159-173, 236-237)."""
    scores = l2_normalize(embeddings) @ l2_normalize(centroids).T
    labels = np.argmax(scores, axis=1)
    if groups is None or len(centroids) == 0:
        return labels
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if len(members) > 1:
            rows, cols = linear_sum_assignment(scores[members], maximize=True)
            labels[members] = -1
            labels[members[rows]] = cols
    return labels
