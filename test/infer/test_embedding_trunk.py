"""The WeSpeaker embedding stage's shortcuts: the shared, batched trunk gives what embedding
every (window, local speaker) from scratch gives; the per-recording trunk, computed block by
block, gives what one pass over the whole recording gives."""

import numpy as np
import torch

from espnet_prune.infer.wespeaker import RecordingTrunk, WeSpeakerResNet34

from .test_embedding_pooling import toy_extractor

RATE = 16000


def test_shared_trunk_equals_embedding_each_speaker_from_scratch():
    extractor = toy_extractor()
    model = extractor.model
    rng = np.random.default_rng(1)
    windows = (0.1 * rng.normal(size=(3, 2 * RATE))).astype(np.float32)
    windows[2, RATE:] = 0  # a zero-padded last window
    rows = np.array([0, 0, 0, 2, 2])  # window 1 has no speaker
    masks = (rng.uniform(size=(5, 99)) > 0.5).astype(np.float32)
    got = extractor.embed_masked(windows, rows, masks)
    with torch.inference_mode():  # pyannote's way: the window through the ResNet per speaker
        want = np.stack([
            model.resnet(model.fbank(torch.from_numpy(windows[row]))[None],
                         torch.from_numpy(mask)[None])[0].numpy()
            for row, mask in zip(rows, masks)
        ])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batch_fbank_equals_one_fbank_per_window():
    rng = np.random.default_rng(2)
    for length in (2 * RATE, 2 * RATE + 7):  # a whole number of hops, and not
        waves = torch.from_numpy((0.1 * rng.normal(size=(3, length))).astype(np.float32))
        want = torch.stack([WeSpeakerResNet34.fbank(w) for w in waves])
        torch.testing.assert_close(WeSpeakerResNet34.batch_fbank(waves), want)


def test_recording_trunk_blocks_equal_one_pass_over_the_recording():
    model = toy_extractor().model
    audio = (0.1 * np.random.default_rng(3).normal(size=9 * RATE + 123)).astype(np.float32)
    frames = 25  # a 2 s window has 198 fbank frames → 25 trunk frames
    starts = np.arange(0, len(audio) - RATE, 6400)  # 0.4 s steps, 5 trunk frames; also past
    # the end of the audio (zero features there)
    for cmn in (0, 100):
        trunk = RecordingTrunk(model, "cpu", cmn_frames=cmn, block_frames=20)
        with torch.inference_mode():
            got = torch.cat([trunk.window_features(audio, starts[i : i + 3], frames)
                             for i in range(0, len(starts), 3)])
            fbank = WeSpeakerResNet34.raw_fbank(torch.from_numpy(audio))
            if cmn:
                sums = torch.nn.functional.pad(fbank.double().cumsum(0), (0, 0, 1, 0))
                index = torch.arange(len(fbank))
                left = (index - cmn // 2).clamp(min=0)
                right = (index - cmn // 2 + cmn).clamp(max=len(fbank))
                fbank = fbank - ((sums[right] - sums[left]) / (right - left)[:, None]).float()
            whole = model.resnet.frame_features(fbank[None])[0]
        whole = torch.nn.functional.pad(whole, (0, 200))
        assert len(starts) > 10 and trunk.features.shape[1] < whole.shape[1] - 200  # bounded
        for start, features in zip(starts, got):
            offset = start // 1280
            torch.testing.assert_close(features, whole[:, offset : offset + frames],
                                       rtol=1e-4, atol=1e-4)
