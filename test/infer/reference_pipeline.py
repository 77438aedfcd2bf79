"""The reference's inference steps after segmentation and embedding, re-derived step by step from
the authors' code, independently of ``espnet_prune.infer``.

Reference: BUTSpeechFIT/DiariZen a60b181, ``recipes/diar_ssl_pruning/infer_avg.py``
``diarize_session`` (lines 36-97) and the pyannote.audio fork it calls (``pa/`` =
``pyannote-audio/pyannote/audio/``). Every function below names the lines it follows. Inputs are
what the segmentation and embedding models would give: per-window powerset log-probabilities
and an embedding function of (window, frame mask); the output is the RTTM's segments.

Only pyannote.core (``SlidingWindow``: frame times and ``closest_frame``) and the installed
pyannote.audio's ``Powerset`` (the fork's ``pa/utils/powerset.py`` is the same code) are used
from libraries.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from pyannote.core import SlidingWindow
from pyannote_modules import pyannote_module
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.ndimage import median_filter
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

# DiariZen's WavLM frames: receptive field 400 samples, step 320 (core/model.py 181-194 with
# the model's kernel sizes [10,3,3,3,3,2,2] and strides [5,2,2,2,2,2,2]). Inference.aggregate
# (pa/core/inference.py 577-581) re-anchors the frames at the chunks' start (0.0): the
# receptive field's own start is not used.
FRAME_DURATION = 400 / 16000
FRAME_STEP = 320 / 16000


def hard_multilabel(log_probs: np.ndarray) -> np.ndarray:
    """``get_segmentations(soft=False)``: argmax powerset class → 0/1 local speakers
    (pa/core/inference.py 225-226, pa/utils/powerset.py ``to_multilabel``), 4 speakers, 2 per
    frame (the recipe's model)."""
    powerset = pyannote_module("pyannote.audio.utils.powerset").Powerset(4, 2)
    return powerset.to_multilabel(torch.from_numpy(log_probs), soft=False).numpy()


def aggregate(scores: np.ndarray, chunk_step: float, chunk_duration: float,
              skip_average: bool) -> np.ndarray:
    """``Inference.aggregate`` with hamming=False, warm_up=(0, 0), missing=0.0
    (pa/core/inference.py 574-666): scores ``[C, F, K]`` (NaN = missing) → ``[N, K]``."""
    num_chunks, frames_per_chunk, num_classes = scores.shape
    frames = SlidingWindow(start=0.0, duration=FRAME_DURATION, step=FRAME_STEP)
    masks = 1 - np.isnan(scores)
    scores = np.nan_to_num(scores, copy=True, nan=0.0)
    num_frames = frames.closest_frame(
        0.0 + chunk_duration + (num_chunks - 1) * chunk_step + 0.5 * frames.duration) + 1
    output = np.zeros((num_frames, num_classes), dtype=np.float32)
    count = np.zeros((num_frames, num_classes), dtype=np.float32)
    seen = np.zeros((num_frames, num_classes), dtype=np.float32)
    for c in range(num_chunks):
        chunk_start = 0.0 + c * chunk_step  # SlidingWindow(start=0, duration, step)[c]
        first = frames.closest_frame(chunk_start + 0.5 * frames.duration)
        output[first : first + frames_per_chunk] += scores[c] * masks[c]
        count[first : first + frames_per_chunk] += masks[c]
        seen[first : first + frames_per_chunk] = np.maximum(
            seen[first : first + frames_per_chunk], masks[c])
    average = output if skip_average else output / np.maximum(count, 1e-12)
    average[seen == 0.0] = 0.0
    return average


def speaker_count(binary: np.ndarray, chunk_step: float, chunk_duration: float) -> np.ndarray:
    """``speaker_count`` (pa/pipelines/utils/diarization.py 121-157, warm-up (0, 0)): the
    mean over chunks of the per-chunk count, ``np.rint``."""
    count = aggregate(np.sum(binary, axis=-1, keepdims=True), chunk_step, chunk_duration,
                      skip_average=False)
    return np.rint(count).astype(np.uint8)[:, 0]


def embed_all(binary: np.ndarray, embed: Callable[[int, np.ndarray], np.ndarray],
              min_num_frames: int) -> np.ndarray:
    """``get_embeddings(exclude_overlap=True)`` (pa/pipelines/speaker_diarization.py 268-360):
    per (chunk, speaker) the clean-frame mask if it has more than ``min_num_frames`` frames,
    else the full mask; an all-zero mask gives NaN (the embedding model's too-short output)."""
    num_chunks, _, num_speakers = binary.shape
    clean = binary * (np.sum(binary, axis=2, keepdims=True) < 2)
    out = None
    for c in range(num_chunks):
        for s in range(num_speakers):
            mask = clean[c, :, s] if np.sum(clean[c, :, s]) > min_num_frames else binary[c, :, s]
            vector = (np.asarray(embed(c, mask.astype(np.float32)), dtype=np.float64)
                      if mask.sum() > 0 else None)
            if out is None and vector is not None:
                out = np.full((num_chunks, num_speakers, len(vector)), np.nan)
            if vector is not None:
                out[c, s] = vector
    return out


def filter_embeddings(embeddings: np.ndarray, binary: np.ndarray):
    """``BaseClustering.filter_embeddings`` (pa/pipelines/clustering.py 47-73, 111-157), no
    subsample (``AgglomerativeClustering(max_num_embeddings=np.inf)``, line 346)."""
    def by_frames(min_frames):
        single = np.sum(binary, axis=2, keepdims=True) == 1
        return np.sum(binary * single, axis=1) >= min_frames

    active = np.sum(binary, axis=1) > 0
    valid = ~np.any(np.isnan(embeddings), axis=2)
    min_frames = round(0.1 * binary.shape[1])
    chunk_idx, speaker_idx = np.where(active * valid * by_frames(min_frames))
    if len(chunk_idx) < 2:
        chunk_idx, speaker_idx = np.where(active * valid * by_frames(0))
    return embeddings[chunk_idx, speaker_idx], chunk_idx, speaker_idx


def ahc(embeddings: np.ndarray, threshold: float, min_cluster_size: int, min_clusters: int,
        max_clusters: int) -> np.ndarray:
    """``AgglomerativeClustering.cluster`` with method "centroid", metric "cosine"
    (pa/pipelines/clustering.py 390-513)."""
    num = len(embeddings)
    min_size = min(min_cluster_size, max(1, round(0.1 * num)))
    if num == 1:
        return np.zeros((1,), dtype=np.uint8)
    embeddings = embeddings / np.linalg.norm(embeddings, axis=-1, keepdims=True)
    dendrogram = linkage(embeddings, method="centroid", metric="euclidean")
    clusters = fcluster(dendrogram, threshold, criterion="distance") - 1
    unique, counts = np.unique(clusters, return_counts=True)
    large = unique[counts >= min_size]
    num_clusters = None
    if len(large) < min_clusters:
        num_clusters = min_clusters
    elif len(large) > max_clusters:
        num_clusters = max_clusters
    if num_clusters is not None and len(large) != num_clusters:
        # the dendrogram search for a count (lines 438-484)
        by_iteration = np.copy(dendrogram)
        by_iteration[:, 2] = np.arange(num - 1)
        best_iteration, best_large = num - 1, 1
        for iteration in np.argsort(np.abs(dendrogram[:, 2] - threshold)):
            if by_iteration[iteration, 3] < min_size:
                continue
            clusters = fcluster(by_iteration, iteration, criterion="distance") - 1
            unique, counts = np.unique(clusters, return_counts=True)
            large = unique[counts >= min_size]
            if abs(len(large) - num_clusters) < abs(best_large - num_clusters):
                best_iteration, best_large = iteration, len(large)
            if len(large) == num_clusters:
                break
        if best_large != num_clusters:
            clusters = fcluster(by_iteration, best_iteration, criterion="distance") - 1
            unique, counts = np.unique(clusters, return_counts=True)
            large = unique[counts >= min_size]
    if len(large) == 0:
        clusters[:] = 0
        return clusters
    small = unique[counts < min_size]
    if len(small) == 0:
        return clusters
    large_centroids = np.vstack([np.mean(embeddings[clusters == k], axis=0) for k in large])
    small_centroids = np.vstack([np.mean(embeddings[clusters == k], axis=0) for k in small])
    distance = cdist(large_centroids, small_centroids, metric="cosine")
    for small_k, large_k in enumerate(np.argmin(distance, axis=0)):
        clusters[clusters == small[small_k]] = large[large_k]
    return np.unique(clusters, return_inverse=True)[1]


def cluster(embeddings: np.ndarray, binary: np.ndarray, threshold: float,
            min_cluster_size: int, min_clusters: int = 1, max_clusters: int = 20) -> np.ndarray:
    """``BaseClustering.__call__`` with ``constrained_assignment=True`` (the default of
    AgglomerativeClustering, line 347): hard clusters ``[C, S]`` (-2: none)
    (pa/pipelines/clustering.py 88-109, 159-173, 175-245, 285-322)."""
    train, chunk_idx, speaker_idx = filter_embeddings(embeddings, binary)
    num_chunks, num_speakers, _ = embeddings.shape
    num = len(train)
    min_clusters = max(1, min(num, min_clusters))
    max_clusters = max(1, min(num, max_clusters))
    if max_clusters < 2:
        return np.zeros((num_chunks, num_speakers), dtype=np.int8)
    train_clusters = ahc(train.copy(), threshold, min_cluster_size, min_clusters, max_clusters)
    # assign_embeddings: centroids of the raw (not unit-length) training embeddings
    raw = embeddings[chunk_idx, speaker_idx]
    centroids = np.vstack([np.mean(raw[train_clusters == k], axis=0)
                           for k in range(np.max(train_clusters) + 1)])
    distance = cdist(embeddings.reshape(-1, embeddings.shape[-1]), centroids, metric="cosine")
    soft = 2 - distance.reshape(num_chunks, num_speakers, -1)
    soft = np.nan_to_num(soft, nan=np.nanmin(soft))
    hard = -2 * np.ones((num_chunks, num_speakers), dtype=np.int8)
    for c, cost in enumerate(soft):
        for s, k in zip(*linear_sum_assignment(cost, maximize=True)):
            hard[c, s] = k
    return hard


def reconstruct(binary: np.ndarray, hard: np.ndarray, count: np.ndarray, chunk_step: float,
                chunk_duration: float) -> np.ndarray:
    """``reconstruct`` + ``to_diarization`` (pa/pipelines/speaker_diarization.py 377-425,
    pa/pipelines/utils/diarization.py 192-239): per cluster the max over its local speakers,
    summed over chunks; each frame activates its ``count`` highest clusters."""
    num_chunks, num_frames, _ = binary.shape
    num_clusters = np.max(hard) + 1
    clustered = np.nan * np.zeros((num_chunks, num_frames, num_clusters))
    for c in range(num_chunks):
        for k in np.unique(hard[c]):
            if k == -2:
                continue
            clustered[c, :, k] = np.max(binary[c][:, hard[c] == k], axis=1)
    activations = aggregate(clustered, chunk_step, chunk_duration, skip_average=True)
    if activations.shape[1] < np.max(count):
        activations = np.pad(activations, ((0, 0), (0, np.max(count) - activations.shape[1])))
    # the reference calls np.argsort(-activations, axis=-1): its order of tied values depends
    # on the CPU (numpy's AVX-512 sort is not stable for 4 values and more; its generic sort
    # of fewer than 17 values is). Here: the stable order, the lower cluster index first
    order = np.argsort(-activations, axis=-1, kind="stable")
    out = np.zeros_like(activations)
    for t in range(len(out)):
        for i in range(int(count[t])):
            out[t, order[t, i]] = 1.0
    return out


def binarize(discrete: np.ndarray) -> list[tuple[float, float, int]]:
    """``Binarize(onset=0.5, offset=0.5)`` (pa/utils/signal.py 254-317): a run of active
    frames goes from the middle of its first frame to the middle of the first inactive one."""
    frames = SlidingWindow(start=0.0, duration=FRAME_DURATION, step=FRAME_STEP)
    times = [frames[i].middle for i in range(len(discrete))]
    segments = []
    for k, scores in enumerate(discrete.T):
        start, active = times[0], scores[0] > 0.5
        for t, y in zip(times[1:], scores[1:]):
            if active and y < 0.5:
                segments.append((start, t, k))
                start, active = t, False
            elif not active and y > 0.5:
                start, active = t, True
        if active:
            segments.append((start, t, k))
    return sorted(segments, key=lambda s: (s[0], s[2]))


def diarize(log_probs: np.ndarray, embed: Callable[[int, np.ndarray], np.ndarray],
            chunk_step: float = 0.8, chunk_duration: float = 8.0, threshold: float = 0.7,
            min_cluster_size: int = 30, max_speakers: int = 20, min_num_frames: int = 0,
            return_count: bool = False):
    """``diarize_session`` (infer_avg.py 36-97) from the segmentation's log-probabilities:
    segments (start s, end s, cluster). ``min_num_frames``: the embedding model's minimum
    (its samples in frames, speaker_diarization.py 274-278)."""
    binary = hard_multilabel(log_probs).astype(np.float32)
    binary = median_filter(binary, size=(1, 11, 1), mode="reflect")
    count = speaker_count(binary, chunk_step, chunk_duration)
    embeddings = embed_all(binary, embed, min_num_frames)
    hard = cluster(embeddings, binary, threshold, min_cluster_size, 1, max_speakers)
    count = np.minimum(count, max_speakers).astype(np.int8)
    hard[np.sum(binary, axis=1) == 0] = -2
    segments = binarize(reconstruct(binary, hard, count, chunk_step, chunk_duration))
    return (segments, count) if return_count else segments


def min_frames_for(min_num_samples: int, num_frames: int, num_samples: int) -> int:
    """The embedding model's minimum length in frames (speaker_diarization.py 274-278)."""
    return math.ceil(num_frames * min_num_samples / num_samples)
