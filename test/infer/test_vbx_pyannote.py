"""Our VBx and PLDA transform against pyannote.audio's own (``pyannote/audio/utils/vbx.py``).

Equal up to floating-point rounding (1e-10), the log-prior floor ``log(pi + 1e-8)`` included
(with ``log(max(pi, 1e-300))`` instead, responsibilities moved by up to 1e-5 and the ELBO by
T·S·1e-8: these tolerances catch that).
"""

import numpy as np
import pytest
from pyannote_modules import pyannote_module
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.special import softmax

from espnet_prune.infer.clustering import VBxClustering, ahc_labels, vbx
from espnet_prune.infer.plda import Plda, estimate_plda

SEEDS = range(6)
FA_FB = [(0.07, 0.8), (0.3, 5.0), (1.0, 1.0)]


def pyannote_vbx():
    return pyannote_module("pyannote.audio.utils.vbx")


def vbx_case(seed: int):
    """PLDA-space features of a few speakers, their ``phi``, and an over- or under-clustered
    initial labelling (as AHC gives); sizes vary with the seed."""
    rng = np.random.default_rng(seed)
    speakers, dim, frames = [(4, 16, 200), (2, 8, 60), (5, 32, 400)][seed % 3]
    phi = np.sort(rng.gamma(2.0, 2.0, dim))[::-1]
    centres = rng.standard_normal((speakers, dim)) * np.sqrt(phi)
    features = centres[rng.integers(0, speakers, frames)] + rng.standard_normal((frames, dim))
    init_clusters = speakers + 3 if seed % 2 == 0 else max(speakers - 1, 1)
    init = np.unique(rng.integers(0, init_clusters, frames), return_inverse=True)[1]
    return features, phi, init


def close(ours, theirs, atol, what):
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol, err_msg=what)


@pytest.mark.parametrize("fa,fb", FA_FB)
@pytest.mark.parametrize("seed", SEEDS)
def test_vbx_is_pyannotes(seed, fa, fb):
    pa = pyannote_vbx()
    features, phi, init = vbx_case(seed)
    gamma, pi, elbos = vbx(features, phi, init, fa, fb, max_iters=20)

    theirs_gamma, theirs_pi = pa.cluster_vbx(init, features, phi, fa, fb, maxIters=20)
    close(gamma, theirs_gamma, 1e-10, "responsibilities")
    close(pi, theirs_pi, 1e-10, "speaker priors")
    assert np.array_equal(pi > 1e-7, theirs_pi > 1e-7)  # the speakers the pipelines keep
    assert np.array_equal(gamma.argmax(1), theirs_gamma.argmax(1))

    # cluster_vbx drops the ELBO trajectory; its call of VBx, repeated, keeps it
    one_hot = np.eye(init.max() + 1)[init]
    _, _, trajectory = pa.VBx(features, phi, Fa=fa, Fb=fb, pi=one_hot.shape[1],
                              gamma=softmax(7.0 * one_hot, axis=1), maxIters=20)
    assert len(elbos) == len(trajectory)
    close(elbos, [value for (value,) in trajectory], 1e-9, "ELBO")


def embeddings_and_plda(seed: int):
    """Raw embeddings of a recording and a PLDA estimated on other embeddings of the
    same kind (both: speaker centres plus noise)."""
    rng = np.random.default_rng(seed)
    dim = 24
    train_centres = rng.standard_normal((12, dim))
    train_speakers = rng.integers(0, 12, 600)
    train = train_centres[train_speakers] + 0.5 * rng.standard_normal((600, dim))
    plda = estimate_plda(train, train_speakers, lda_dim=16)
    centres = rng.standard_normal((3 + seed % 3, dim))
    embeddings = centres[rng.integers(0, len(centres), 150)] + 0.5 * rng.standard_normal((150, dim))
    return embeddings, plda


@pytest.mark.parametrize("seed", SEEDS)
def test_vbx_clustering_keeps_the_speakers_pyannotes_pipeline_keeps(seed):
    """AHC init and VBx as in pyannote's ``VBxClustering.__call__`` (pipelines/clustering.py:
    centroid-linkage AHC of unit-length embeddings, ``cluster_vbx``, speakers with prior > 1e-7);
    the centroids then differ on purpose (see ``VBxClustering.centroids``)."""
    pa = pyannote_vbx()
    embeddings, plda = embeddings_and_plda(seed)
    clustering = VBxClustering(plda)
    features = clustering.space(embeddings)
    init = ahc_labels(embeddings, clustering.threshold)

    normed = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    theirs_init = fcluster(linkage(normed, method="centroid", metric="euclidean"),
                           clustering.threshold, criterion="distance") - 1
    assert np.array_equal(init, np.unique(theirs_init, return_inverse=True)[1])
    q, sp = pa.cluster_vbx(init, features, plda.phi, clustering.fa, clustering.fb, maxIters=20)
    kept = clustering._vbx(features, init)
    assert kept.shape == q[:, sp > 1e-7].shape
    close(kept, q[:, sp > 1e-7], 1e-10, "responsibilities of the kept speakers")


@pytest.mark.parametrize("seed", range(3))
def test_plda_transform_is_pyannotes(seed, tmp_path):
    """pyannote's ``vbx_setup`` (its two .npz files) and our :class:`Plda` give the same PLDA
    space and ``phi``; ours stores ``mean2`` divided by sqrt(embedding dim), as ours does not
    scale the centred unit-length embedding by sqrt(dim) before the LDA."""
    rng = np.random.default_rng(seed)
    dim, lda_dim = [(32, 16), (24, 24), (40, 8)][seed]
    lda = rng.standard_normal((dim, lda_dim))
    mean1, mean2 = rng.standard_normal(dim), rng.standard_normal(lda_dim)
    mu, tr = rng.standard_normal(lda_dim), rng.standard_normal((lda_dim, lda_dim))
    psi = rng.gamma(2.0, 1.0, lda_dim)
    np.savez(tmp_path / "xvec_transform.npz", mean1=mean1, mean2=mean2, lda=lda)
    np.savez(tmp_path / "plda.npz", mu=mu, tr=tr, psi=psi)
    xvec_tf, plda_tf, phi = pyannote_vbx().vbx_setup(
        tmp_path / "xvec_transform.npz", tmp_path / "plda.npz"
    )
    plda_tr = plda_tf(mu + np.eye(lda_dim)).T  # the whitening pyannote derives from tr, psi
    ours = Plda(mean1, lda, mean2 / np.sqrt(dim), mu, plda_tr, phi)
    x = rng.standard_normal((50, dim))
    np.testing.assert_allclose(ours.transform(x), plda_tf(xvec_tf(x)), rtol=1e-9, atol=1e-9)
