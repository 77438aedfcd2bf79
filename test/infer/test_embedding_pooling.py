"""Speaker embeddings as the reference pipeline computes them: the ResNet34 sees the whole
window and its statistics pooling is weighted by the local speaker's clean-frame mask."""

import numpy as np
import torch

from espnet_prune.infer.clustering import AgglomerativeClustering
from espnet_prune.infer.pipeline import DiarizationPipeline, InferenceConfig
from espnet_prune.infer.wespeaker import WeSpeakerEmbedding, WeSpeakerResNet34

from .oracle import OracleSegmentation, tone_recording

RATE = 16000


def toy_extractor(seed=0) -> WeSpeakerEmbedding:
    torch.manual_seed(seed)
    model = WeSpeakerResNet34().eval()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if "running_var" in name:
                buffer.uniform_(0.5, 1.5)
    extractor = WeSpeakerEmbedding.__new__(WeSpeakerEmbedding)  # no checkpoint file needed
    extractor.model, extractor.device = model, "cpu"
    return extractor


def hand_weighted_stats_embedding(model, window: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Weighted mean and unbiased weighted std over time, written out in numpy."""
    with torch.no_grad():
        fbank = model.fbank(torch.from_numpy(window))
        x = model.resnet.frame_features(fbank[None])[0].double().numpy()  # [D, T']
    frames = x.shape[1]
    w = mask[np.floor(np.arange(frames) * len(mask) / frames).astype(int)].astype(np.float64)
    total = w.sum()
    mean = (x * w).sum(1) / total
    var = (w * (x - mean[:, None]) ** 2).sum(1) / (total - (w**2).sum() / total)
    stats = np.concatenate([mean, np.sqrt(var)])
    weight = model.resnet.seg_1.weight.double().detach().numpy()
    bias = model.resnet.seg_1.bias.double().detach().numpy()
    return weight @ stats + bias


def test_masked_embedding_equals_hand_computed_weighted_stats():
    extractor = toy_extractor()
    rng = np.random.default_rng(0)
    windows = (0.1 * rng.normal(size=(2, 2 * RATE))).astype(np.float32)
    rows = np.array([0, 0, 1])
    masks = (rng.uniform(size=(3, 99)) > 0.4).astype(np.float32)  # model frames of 2 s
    got = extractor.embed_masked(windows, rows, masks)
    for index, row in enumerate(rows):
        want = hand_weighted_stats_embedding(extractor.model, windows[row], masks[index])
        np.testing.assert_allclose(got[index], want, rtol=1e-4, atol=1e-4)
    # different masks of one window give different embeddings (the mask is really used)
    assert np.abs(got[0] - got[1]).max() > 1e-3


class SpyExtractor:
    """Records what the pipeline hands a pooling extractor."""

    def __init__(self):
        self.calls = []

    def embed_masked(self, windows, rows, masks):
        self.calls.append((windows.copy(), rows.copy(), masks.copy()))
        return np.random.default_rng(len(self.calls)).normal(size=(len(rows), 8))


def test_pipeline_pools_whole_windows_with_clean_frame_masks():
    audio, turns = tone_recording(np.random.default_rng(5), duration=20.0, num_speakers=2)
    config = InferenceConfig(window=8.0, step=4.0, batch_size=2, median_filter=1)
    probe = DiarizationPipeline(None, None, 320, 400, None, None, config)
    window, _, starts = probe.window_starts(len(audio))
    oracle = OracleSegmentation(turns, len(audio), starts)
    spy = SpyExtractor()
    pipeline = DiarizationPipeline(oracle, oracle.to_multilabel, 320, 400, spy,
                                   AgglomerativeClustering(0.7, 1), config)
    pipeline(audio, "tones")
    assert spy.calls
    window_index = 0
    for windows, rows, masks in spy.calls:
        assert windows.shape[1] == window  # whole (zero-padded) windows, not spliced samples
        for row in range(len(windows)):
            start = int(starts[window_index + row])
            piece = audio[start : start + window]
            np.testing.assert_array_equal(windows[row, : len(piece)], piece)
            assert not windows[row, len(piece) :].any()
        assert masks.shape[1] == (window - 400) // 320 + 1
        for row, mask in zip(rows, masks):
            offset = int(starts[window_index + row]) // 320
            local = oracle.reference[offset : offset + masks.shape[1]]
            reference = np.zeros((masks.shape[1], local.shape[1]))
            reference[: len(local)] = local
            single = reference.sum(1) == 1
            speakers = [k for k in range(reference.shape[1])
                        if np.array_equal(mask.astype(bool), reference[:, k].astype(bool) & single)
                        or np.array_equal(mask.astype(bool), reference[:, k].astype(bool))]
            assert speakers, "mask is neither a speaker's clean frames nor all its frames"
        window_index += len(windows)
