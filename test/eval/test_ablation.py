"""The pipeline ablation (oracle segmentation / oracle clustering) on tone 'speakers'."""

import numpy as np
import soundfile as sf
from infer.oracle import RATE, ToneEmbedding, tone_recording

from espnet_prune.diar.powerset import Powerset
from espnet_prune.eval.ablation import VARIANTS, ablate, table
from espnet_prune.infer.clustering import AgglomerativeClustering
from espnet_prune.infer.oracle import OracleEmbedding, OracleSegmentation
from espnet_prune.infer.pipeline import DiarizationPipeline, InferenceConfig
from espnet_prune.utils.datadir import validate_data_dir
from espnet_prune.utils.rttm import write_rttm


class ShiftedSegmentation:
    """A poor 'model': the reference, one speaker's activity shifted by 1 s (boundary errors)."""

    def __init__(self, turns, num_samples, starts):
        late = [t._replace(start=t.start + 1.0) if t.speaker == "S0" else t for t in turns]
        self.oracle = OracleSegmentation(late, num_samples, starts, Powerset(4, 2), 320, 400)

    def __call__(self, batch, lengths):
        if self.oracle.calls == len(self.oracle.offsets):  # the next pipeline run
            self.oracle.calls = 0
        return self.oracle(batch, lengths)


def test_ablation_separates_segmentation_from_clustering_errors(tmp_path):
    audio, turns = tone_recording(np.random.default_rng(7), duration=30.0)
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "tones.wav", audio, RATE)
    (data / "wav.scp").write_text(f"tones {data / 'tones.wav'}\n")
    write_rttm(data / "rttm", turns)
    data_dir = validate_data_dir(data)
    config = InferenceConfig(step=1.6, median_filter=1)
    probe = DiarizationPipeline(None, None, 320, 400, None, None, config)
    model = ShiftedSegmentation(turns, len(audio), probe.window_starts(len(audio))[2])
    results = ablate(data_dir, model, model.oracle.to_multilabel, Powerset(4, 2), 320, 400,
                     ToneEmbedding(), AgglomerativeClustering(0.7, 30), config)
    assert set(VARIANTS) <= set(results)
    # the segmentation errors are in every variant with the model's segmentation, and only there
    assert results["full"]["der"] > 0.03
    assert results["oracle_clustering"]["der"] > 0.03
    assert results["oracle_segmentation"]["der"] < 0.02
    assert results["oracle_both"]["der"] < 0.02
    assert "|oracle_both|" in table(results)


def test_oracle_embedding_maps_local_speakers_to_their_reference_speaker():
    audio, turns = tone_recording(np.random.default_rng(3), duration=20.0)
    config = InferenceConfig(step=4.0, median_filter=1)
    probe = DiarizationPipeline(None, None, 320, 400, None, None, config)
    window, _, starts = probe.window_starts(len(audio))
    oracle = OracleEmbedding(audio, turns, starts, window, 320, 400)
    batch = np.zeros((1, window), dtype=np.float32)
    piece = audio[int(starts[1]) : int(starts[1]) + window]
    batch[0, : len(piece)] = piece
    frames = (window - 400) // 320 + 1
    offset = int(starts[1]) // 320
    reference = oracle.reference[offset : offset + frames]
    speaker = int(np.argmax(reference.sum(0)))
    mask = np.zeros(frames, dtype=np.float32)
    mask[: len(reference)] = reference[:, speaker]
    out = oracle.embed_masked(batch, np.array([0]), mask[None])
    assert out.shape == (1, len(oracle.speakers) + 1) and out[0, speaker] == 1 and out.sum() == 1
