"""diar_plda: PLDA from saved embeddings (then used by VBx) and from a data dir."""

import numpy as np
import pytest

from espnet_prune.bin import diar_plda
from espnet_prune.errors import DataError
from espnet_prune.infer.clustering import VBxClustering, assign
from espnet_prune.infer.plda import Plda, single_speaker_spans
from espnet_prune.utils.rttm import RttmSegment

from .test_clustering import accuracy, nuisance


def test_plda_from_embeddings_file_drives_vbx(tmp_path):
    rng = np.random.default_rng(0)
    train, train_speakers = nuisance(rng, 80, 20)
    source = tmp_path / "train_embeddings.npz"
    np.savez(source, embeddings=train, speakers=np.array([f"s{k}" for k in train_speakers]))
    output = tmp_path / "plda.npz"
    assert diar_plda.main(["--embeddings", str(source), "--output", str(output),
                           "--lda_dim", "24"]) == 0
    plda = Plda.load(output)
    assert plda.lda_dim == 24 and plda.mean1.shape == (32,)
    test, truth = nuisance(rng, 3, 40)
    clustering = VBxClustering(plda)
    centroids = clustering.centroids(test)
    labels = assign(clustering.space(test), centroids)
    assert len(centroids) == 3 and accuracy(truth, labels) > 0.95

    np.savez(source, embeddings=train)
    with pytest.raises(DataError, match="speakers"):
        diar_plda.main(["--embeddings", str(source), "--output", str(output)])
    with pytest.raises(DataError, match="does not exist"):
        diar_plda.main(["--embeddings", str(tmp_path / "no.npz"), "--output", str(output)])


def test_single_speaker_spans_exclude_overlap():
    segments = [RttmSegment("r", 0.0, 3.0, "a"), RttmSegment("r", 2.0, 3.0, "b"),
                RttmSegment("r", 5.0, 0.5, "a"), RttmSegment("r", 6.0, 2.0, "a")]
    spans = single_speaker_spans(segments, min_length=1.0)
    # b (2-5 s) overlaps a for 2-3 s; a's 0.5 s turn is too short
    assert spans == {"a": [(0.0, 2.0), (6.0, 8.0)], "b": [(3.0, 5.0)]}


def test_plda_from_data_dir_with_resemblyzer(tmp_path):
    from diar_fixtures import make_diar_data_dir

    data = make_diar_data_dir(tmp_path / "data", {
        "rec1": [(0.0, 2.9, 0), (3.0, 5.9, 1)],
        "rec2": [(0.0, 2.9, 2), (3.0, 5.9, 0)],
    })
    output = tmp_path / "plda.npz"
    saved = tmp_path / "embeddings.npz"
    assert diar_plda.main(["--data_dir", str(data), "--output", str(output), "--segment", "1.0",
                           "--save_embeddings", str(saved)]) == 0
    with np.load(saved) as stored:
        # 4 turns of 2.9 s → 2 pieces of 1 s each (the 0.9 s rests are under --min_segment)
        assert stored["embeddings"].shape == (8, 256)
        assert sorted(set(stored["speakers"].tolist())) == [
            "rec1/spk0", "rec1/spk1", "rec2/spk0", "rec2/spk2"]
    assert Plda.load(output).lda_dim == 128
