"""The masked-prediction pieces against the libraries they follow, and learning on a tiny
corpus (loss falls, masked accuracy above chance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio
from diar_fixtures import synth_speaker_signal
from torchaudio.models.wav2vec2.components import MaskGenerator

from espnet_prune.errors import ConfigError
from espnet_prune.ssl import (
    KMeansQuantizer,
    MaskedPredictionModel,
    MfccFeatures,
    WavLMLayerFeatures,
    fit_kmeans,
    mix_utterances,
    span_mask,
)
from espnet_prune.wavlm import WavLM, wavlm_config


def test_span_mask_is_torchaudios_mask_generator():
    """Without padding, the same seed gives the frames torchaudio's HuBERT masks (its
    ``mask_prob`` 0.8 = HuBERT's p 0.08 x span 10, as in fairseq's HuBERT configs)."""
    generator = MaskGenerator(8, 0.8, "static", 0.0, 10, False, 0, 0.0, "static", 0.0, 10,
                              False, 0)
    for seed, (batch, frames) in enumerate([(1, 50), (3, 399), (8, 200), (2, 12)]):
        torch.manual_seed(seed)
        _, reference = generator(torch.zeros(batch, frames, 8), None)
        torch.manual_seed(seed)
        ours = span_mask(frames, None, batch, 0.08, 10)
        assert torch.equal(ours, reference)


@pytest.mark.parametrize("seed", range(40))
def test_span_mask_never_masks_padding(seed):
    """Many random batches of ragged lengths: padding is never masked, every utterance
    is masked somewhere, and, as in fairseq/torchaudio, every row has as many masked frames
    (the batch's smallest count: spans of longer rows are thinned, so runs may be short)."""
    rng = np.random.default_rng(seed)
    batch = int(rng.integers(1, 9))
    frames = int(rng.integers(11, 500))
    lengths = torch.as_tensor(rng.integers(11, frames + 1, size=batch))
    lengths[int(rng.integers(batch))] = frames
    torch.manual_seed(seed)
    mask = span_mask(frames, lengths, batch, 0.08, 10)
    assert mask.shape == (batch, frames) and mask.dtype == torch.bool
    for row, length in zip(mask, lengths.tolist()):
        assert not row[length:].any()
        assert row[:length].any()
    assert len(set(mask.sum(1).tolist())) == 1


def test_span_mask_fraction_matches_hubert():
    """p 0.08 x length 10 with overlaps masks 1 - exp(-0.8) ~ 55 % of long utterances."""
    torch.manual_seed(0)
    mask = span_mask(2000, None, 64, 0.08, 10)
    assert abs(mask.float().mean().item() - (1 - np.exp(-0.8))) < 0.03


@pytest.mark.parametrize("num_samples", [400, 401, 719, 720, 16000, 33333, 128000, 127999])
def test_mfcc_frames_are_the_wavlm_frames(num_samples):
    """Frame i of the targets covers the samples of WavLM's frame i: the count is the CNN's,
    and the static MFCCs are every other frame of the 10 ms Kaldi MFCC (same windows)."""
    torch.manual_seed(num_samples)
    wav = 0.1 * torch.randn(1, num_samples)
    features = MfccFeatures()(wav)
    wavlm = WavLM(wavlm_config("tiny"))
    assert features.shape == (1, int(wavlm.frame_lengths(torch.tensor([num_samples]))[0]), 39)
    with torch.no_grad():
        hidden, _ = wavlm.extract_features(wav)
    assert hidden[-1].shape[1] == features.shape[1]
    reference = torchaudio.compliance.kaldi.mfcc(wav, sample_frequency=16000, use_energy=False)
    assert torch.allclose(features[0, :, :13], reference[::2][: features.shape[1]], atol=1e-3)


def test_mfcc_padding_rows_are_zero_and_rows_are_per_utterance():
    wav = 0.1 * torch.randn(2, 16000)
    lengths = torch.tensor([16000, 8000])
    features = MfccFeatures()(wav, lengths)
    alone = MfccFeatures()(wav[1:, :8000])
    frames = alone.shape[1]
    assert torch.allclose(features[1, :frames], alone[0])
    assert not features[1, frames:].any()


def test_quantizer_is_sklearns_nearest_centroid():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    data = rng.standard_normal((500, 39)).astype(np.float32) + rng.integers(0, 5, (500, 1))
    kmeans = KMeans(n_clusters=12, n_init=1, random_state=0).fit(data)
    quantizer = KMeansQuantizer(kmeans.cluster_centers_)
    query = rng.standard_normal((3, 77, 39)).astype(np.float32) * 2
    ours = quantizer(torch.from_numpy(query)).numpy()
    assert np.array_equal(ours.reshape(-1), kmeans.predict(query.reshape(-1, 39).astype(float)))


def test_fit_kmeans_finds_separated_clusters_and_refuses_too_few_frames():
    rng = np.random.default_rng(0)
    centres = 20 * rng.standard_normal((5, 3))
    data = np.concatenate([c + rng.standard_normal((200, 3)) for c in centres])
    found = fit_kmeans(data, 5, n_init=3)
    assert found.shape == (5, 3) and found.dtype == np.float32
    assert np.abs(np.sort(found[:, 0]) - np.sort(centres[:, 0])).max() < 0.5
    with pytest.raises(ConfigError, match="at least"):
        fit_kmeans(data[:4], 5)


@pytest.mark.parametrize("seed", range(20))
def test_mix_utterances_adds_a_short_scaled_segment(seed):
    rng = np.random.default_rng(seed)
    batch, total = int(rng.integers(2, 6)), int(rng.integers(100, 3000))
    lengths = torch.as_tensor(rng.integers(10, total + 1, size=batch))
    wav = torch.zeros(batch, total)
    for i, n in enumerate(lengths.tolist()):
        wav[i, :n] = torch.randn(n)
    mixed = mix_utterances(wav, lengths, 1.0, torch.Generator().manual_seed(seed))
    for i, n in enumerate(lengths.tolist()):
        assert not mixed[i, n:].any()  # padding stays zero
        changed = (mixed[i] != wav[i]).nonzero().squeeze(-1)
        assert 0 < changed.numel() <= n // 2 + 1
        noise = mixed[i] - wav[i]
        ratio_db = 10 * torch.log10(wav[i, :n].pow(2).mean()
                                    / noise[changed].pow(2).mean())
        assert -5.01 <= float(ratio_db) <= 5.01
    assert torch.equal(mix_utterances(wav, lengths, 0.0), wav)


def tiny_corpus(num: int = 6, seconds: float = 2.0) -> torch.Tensor:
    """Utterances whose speakers/pitches change: MFCC clusters that context can predict."""
    rows = []
    for i in range(num):
        n = int(seconds * 16000)
        a = synth_speaker_signal(n // 2, i % 3, seed=i)
        b = synth_speaker_signal(n - n // 2, (i + 1) % 3, seed=100 + i)
        rows.append(np.concatenate([a, b]))
    return torch.from_numpy(np.stack(rows))


def test_pretraining_loss_falls_and_masked_accuracy_rises_above_chance():
    torch.manual_seed(0)
    wav = tiny_corpus()
    features = MfccFeatures()
    clusters = 20
    centroids = fit_kmeans(features(wav).reshape(-1, 39).numpy(), clusters, n_init=2)
    model = MaskedPredictionModel(WavLM(wavlm_config("tiny")), features,
                                  KMeansQuantizer(centroids))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)

    def evaluate():
        model.eval()
        with torch.no_grad():
            loss, stats, _ = model(wav)
        model.train()
        return float(loss), float(stats["acc_masked"])

    loss_before, acc_before = evaluate()
    for _ in range(60):
        loss, _, _ = model(wav[torch.randperm(len(wav))[:4]])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    loss_after, acc_after = evaluate()
    assert loss_after < loss_before - 0.5
    assert acc_after > 3 / clusters > acc_before


def test_masked_frames_carry_the_mask_embedding_and_padding_is_ignored():
    """The loss sees only masked frames; the input there is the mask embedding (the output of
    those frames does not depend on the audio under them)."""
    torch.manual_seed(0)
    wav = tiny_corpus(2)
    features = MfccFeatures()
    model = MaskedPredictionModel(WavLM(wavlm_config("tiny")), features,
                                  KMeansQuantizer(torch.randn(7, 39))).eval()
    captured = {}
    handle = model.wavlm.encoder.register_forward_pre_hook(
        lambda m, args: captured.setdefault("x", args[0].detach().clone()))
    model(wav)
    handle.remove()
    mask = model.make_mask(captured["x"].shape[1], model.wavlm.frame_lengths(
        torch.tensor([wav.shape[1]] * 2)), 2)
    assert mask.any()
    assert torch.allclose(captured["x"][mask], model.mask_embedding.expand(int(mask.sum()), -1))
    assert not torch.allclose(captured["x"][~mask][:5], model.mask_embedding.expand(5, -1))


def test_second_iteration_features_are_a_frozen_layer():
    wavlm = WavLM(wavlm_config("tiny"))
    layer = WavLMLayerFeatures(wavlm, 2).train()
    assert not layer.wavlm.training and not any(p.requires_grad for p in layer.parameters())
    wav = 0.1 * torch.randn(1, 8000)
    with torch.no_grad():
        expected = wavlm.extract_features(wav)[0][2]
    assert torch.equal(layer(wav), expected)
    with pytest.raises(ConfigError, match="outside"):
        WavLMLayerFeatures(wavlm, 9)


@pytest.mark.parametrize("preset", ["tiny", "mini", "base_plus", "large", "base_plus_s80"])
def test_every_preset_trains_with_the_masked_prediction_objective(preset):
    """A real user continues the pre-training of a converted Base+/Large (or of a pruned
    structure): one step of the objective on each preset, finite loss, and a gradient on the
    WavLM's CNN, its transformer and the head (2 s of audio, batch 2)."""
    torch.manual_seed(0)
    wav = torch.randn(2, 32000) * 0.1
    features = MfccFeatures()
    centroids = np.random.RandomState(0).randn(8, 39).astype(np.float32)
    model = MaskedPredictionModel(WavLM(wavlm_config(preset)), features,
                                  KMeansQuantizer(centroids))
    loss, stats, _ = model(wav, torch.tensor([32000, 24000]))
    assert torch.isfinite(loss) and 0.0 <= float(stats["acc_masked"]) <= 1.0
    loss.backward()
    conv = next(p for n, p in model.wavlm.named_parameters() if "conv" in n)
    last = [p for n, p in model.wavlm.named_parameters() if "layers" in n][-1]
    for name, param in (("CNN", conv), ("transformer", last),
                        ("head", next(model.head.parameters()))):
        assert param.grad is not None and param.grad.abs().sum() > 0, name
