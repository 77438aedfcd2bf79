import numpy as np
import pytest

from espnet_prune.errors import DataError
from espnet_prune.eval.scoring import score
from espnet_prune.infer.clustering import AgglomerativeClustering
from espnet_prune.infer.pipeline import DiarizationPipeline, InferenceConfig

from .oracle import OracleSegmentation, ToneEmbedding, tone_recording


def run_oracle(audio, turns, config, embedding=None, clustering=None):
    probe = DiarizationPipeline(None, None, 320, 400, None, None, config)
    _, _, starts = probe.window_starts(len(audio))
    oracle = OracleSegmentation(turns, len(audio), starts)
    pipeline = DiarizationPipeline(
        oracle, oracle.to_multilabel, 320, 400, embedding or ToneEmbedding(),
        clustering or AgglomerativeClustering(threshold=0.7, min_cluster_size=30), config,
    )
    return pipeline(audio, "tones"), oracle


def test_oracle_segmentation_and_exact_embeddings_give_near_zero_der():
    audio, turns = tone_recording(np.random.default_rng(0))
    hyp, oracle = run_oracle(audio, turns, InferenceConfig(step=0.8))
    assert oracle.calls == len(oracle.offsets)
    uem = {"tones": [(0.0, len(audio) / 16000)]}
    rates = score({"tones": turns}, {"tones": hyp}, uem=uem)["overall"]
    assert rates["der"] < 0.02, rates
    assert rates["confusion"] < 0.005
    assert len({seg.speaker for seg in hyp}) == 3


def test_num_speakers_is_respected():
    audio, turns = tone_recording(np.random.default_rng(1))
    hyp, _ = run_oracle(audio, turns, InferenceConfig(step=1.6, num_speakers=2))
    assert len({seg.speaker for seg in hyp}) == 2


def test_short_recording_and_silence():
    rng = np.random.default_rng(2)
    audio, turns = tone_recording(rng, duration=3.0, num_speakers=1)
    hyp, _ = run_oracle(audio, turns, InferenceConfig())
    assert hyp and max(seg.end for seg in hyp) <= 3.0 + 0.02
    silent = np.zeros(16000 * 10, dtype=np.float32)
    assert run_oracle(silent, [], InferenceConfig())[0] == []  # documented empty output
    with pytest.raises(DataError, match="shorter than one model frame"):
        run_oracle(np.zeros(100, dtype=np.float32), [], InferenceConfig())
    with pytest.raises(DataError, match="mono"):
        run_oracle(np.zeros((2, 16000), dtype=np.float32), [], InferenceConfig())


def test_long_recordings_cluster_a_subsample_of_embeddings():
    audio, turns = tone_recording(np.random.default_rng(0))
    counted = []

    class CountingClustering(AgglomerativeClustering):
        def centroids(self, embeddings, *args):
            counted.append(len(embeddings))
            return super().centroids(embeddings, *args)

    config = InferenceConfig(step=0.8, max_cluster_embeddings=12)
    hyp, _ = run_oracle(audio, turns, config, clustering=CountingClustering(0.7, 30))
    assert counted == [12]
    uem = {"tones": [(0.0, len(audio) / 16000)]}
    rates = score({"tones": turns}, {"tones": hyp}, uem=uem)["overall"]
    assert rates["der"] < 0.02, rates  # every embedding is still assigned to a centroid


def test_audio_streamed_from_a_file_gives_the_same_result(tmp_path):
    import soundfile as sf

    from espnet_prune.infer.pipeline import WavFileAudio

    audio, turns = tone_recording(np.random.default_rng(3), duration=20.0)
    path = tmp_path / "tones.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    config = InferenceConfig(step=1.6, batch_size=3)
    in_memory, _ = run_oracle(audio, turns, config)
    streamed, _ = run_oracle(WavFileAudio(path), turns, config)
    assert streamed == in_memory and in_memory


class ScriptedSegmentation:
    """Window-local activities given per window (windows are served in order, batch size 1):
    speaker A everywhere; in window 1 only, a second speaker D replaces A for 1 s."""

    frames = (8 * 16000 - 400) // 320 + 1

    def __init__(self):
        self.calls = 0

    def __call__(self, batch, lengths):
        local = np.zeros((len(batch), self.frames, 4), dtype=np.float32)
        local[:, :, 0] = 1
        if self.calls == 1:
            local[0, 200:250, 0] = 0
            local[0, 200:250, 1] = 1
        self.calls += len(batch)
        return local

    @staticmethod
    def to_multilabel(scores):
        return scores.astype(np.uint8)


class ScriptedEmbedding:
    """A's embeddings along one axis, D's (window 1, second request) along another."""

    def __init__(self):
        self.calls = 0

    def embed_masked(self, windows, rows, masks):
        out = np.tile([1.0, 0.0, 0.0], (len(rows), 1)) + 0.01 * np.arange(len(rows))[:, None]
        if self.calls == 1:
            out[1] = [0.0, 1.0, 0.0]
        self.calls += 1
        return out


def test_a_requested_speaker_is_not_binarised_away():
    """D is a cluster of its own but every window but one says A at D's frames: the top-count
    binarisation drops D (here without a requested count too). Asked for 2 speakers, the
    pipeline keeps D where its own score is highest."""
    audio = 0.1 * np.random.default_rng(0).normal(size=16 * 16000).astype(np.float32)

    def run(num_speakers):
        config = InferenceConfig(step=2.0, batch_size=1, median_filter=1,
                                 num_speakers=num_speakers)
        pipeline = DiarizationPipeline(ScriptedSegmentation(), ScriptedSegmentation.to_multilabel,
                                       320, 400, ScriptedEmbedding(),
                                       AgglomerativeClustering(0.7, 1), config)
        return pipeline(audio, "rec")

    assert len({seg.speaker for seg in run(None)}) == 1
    kept = run(2)
    assert len({seg.speaker for seg in kept}) == 2
    d = [seg for seg in kept if seg.speaker != max(kept, key=lambda s: s.duration).speaker]
    assert d and all(5.9 <= seg.start and seg.end <= 7.1 for seg in d), d


class MaskedToneEmbedding(ToneEmbedding):
    """Whole-window extractor (``embed_masked``): tone energies of the window's masked frames;
    records the number of windows of every call."""

    def __init__(self):
        self.sizes = []

    def embed_masked(self, windows, rows, masks):
        self.sizes.append(len(windows))
        centre = (400 - 320) // 2
        waves = []
        for row, mask in zip(rows, masks):
            keep = np.repeat(mask > 0, 320)
            waves.append(windows[row][centre : centre + len(keep)][keep[: len(windows[row])
                                                                      - centre]])
        return self(waves)


@pytest.mark.parametrize("forward_batch_size", [1, 3, 8])
def test_forward_batch_size_bounds_every_forward_and_changes_nothing(forward_batch_size):
    audio, turns = tone_recording(np.random.default_rng(4), duration=30.0)

    def run(size):
        config = InferenceConfig(step=1.6, batch_size=8, forward_batch_size=size)
        probe = DiarizationPipeline(None, None, 320, 400, None, None, config)
        oracle = OracleSegmentation(turns, len(audio), probe.window_starts(len(audio))[2])
        sizes = []

        def segmentation(batch, lengths):
            sizes.append(len(batch))
            return oracle(batch, lengths)

        embedding = MaskedToneEmbedding()
        pipeline = DiarizationPipeline(segmentation, oracle.to_multilabel, 320, 400, embedding,
                                       AgglomerativeClustering(0.7, 30), config)
        return pipeline(audio, "tones"), sizes, embedding.sizes

    whole, whole_sizes, _ = run(None)
    assert max(whole_sizes) == 8 and whole
    sliced, sizes, embedding_sizes = run(forward_batch_size)
    assert sliced == whole
    # a partial last window alone would get fewer frames: it shares its neighbour's forward
    assert forward_batch_size in sizes and max(sizes) <= forward_batch_size + 1
    assert max(embedding_sizes) <= forward_batch_size + 1
    assert sum(sizes) == sum(whole_sizes)


@pytest.mark.parametrize("option", ["batch_size", "forward_batch_size"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_batch_sizes_must_be_whole_positive_numbers(option, value):
    from espnet_prune.errors import ConfigError

    with pytest.raises(ConfigError, match=option):
        InferenceConfig(**{option: value})
