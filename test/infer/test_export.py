"""The ONNX export of the segmentation model against PyTorch (tiny random-weight models, pruned
and unpruned WavLM), its int8 variant, and the one-line errors of the onnxruntime backend."""

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from espnet_prune.errors import CheckpointError, ConfigError  # noqa: E402
from espnet_prune.infer.export import (  # noqa: E402
    OnnxSegmenter,
    export_onnx,
    onnx_segmentation,
    quantize_int8,
)
from espnet_prune.measure.bench import PRESETS, build_model  # noqa: E402

RATE = 16000
TOLERANCE = 1e-4  # max |log-prob| difference fp32 ONNX vs PyTorch (the bound)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{"pruned"|"unpruned": (model, path of its fp32 ONNX export)}."""
    (unpruned, pruned), encoder_conf = PRESETS["tiny"]
    folder = tmp_path_factory.mktemp("onnx")
    result = {}
    for kind, name in (("pruned", pruned), ("unpruned", unpruned)):
        model = build_model(name, encoder_conf)
        result[kind] = (model, export_onnx(model, folder / f"{kind}.onnx"))
    return result


def batch(lengths, samples, seed=0):
    """Zero-padded windows [B, samples] of noise, as the pipeline feeds them."""
    rng = np.random.default_rng(seed)
    speech = np.zeros((len(lengths), samples), dtype=np.float32)
    for row, length in enumerate(lengths):
        speech[row, :length] = 0.1 * rng.standard_normal(length)
    return speech, np.asarray(lengths, dtype=np.int64)


def pytorch_log_probs(model, speech, lengths):
    with torch.inference_mode():
        return model.predict(torch.from_numpy(speech), torch.from_numpy(lengths)).numpy()


# batch 1 full, batch 1 partial (all frames past the longest window trimmed), batch 3 with a
# full, a partial and a short window; 3 s windows (the graph was traced on 4 s: dynamic time)
CASES = {"full": [3 * RATE], "partial": [2 * RATE + 123],
         "three": [3 * RATE, 2 * RATE + 123, RATE // 2]}


@pytest.mark.parametrize("kind", ["pruned", "unpruned"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fp32_export_matches_pytorch(exported, kind, case, one_torch_thread):
    model, path = exported[kind]
    speech, lengths = batch(CASES[case], 3 * RATE)
    reference = pytorch_log_probs(model, speech, lengths)
    segmentation, to_multilabel = onnx_segmentation(path, num_threads=1)
    log_probs = segmentation(speech, lengths)
    assert log_probs.shape == reference.shape
    assert np.abs(log_probs - reference).max() <= TOLERANCE
    assert to_multilabel(log_probs).shape == (*reference.shape[:2], 4)


def test_metadata_carries_geometry_and_powerset(exported):
    model, path = exported["pruned"]
    segmenter = OnnxSegmenter(path)
    assert (segmenter.frame_shift, segmenter.frame_length) == (model.frame_shift,
                                                               model.frame_length)
    assert segmenter.powerset.num_classes == model.powerset.num_classes


def test_session_returns_forward_buffers_after_each_run(exported):
    """No CPU memory arena: a long recording's peak is not the largest forward's buffers held
    for the whole run on top of the embedding stage's (the 2-hour memory goal)."""
    segmenter = OnnxSegmenter(exported["pruned"][1])
    assert segmenter.session.get_session_options().enable_cpu_mem_arena is False


def test_int8_stays_close(exported, tmp_path, one_torch_thread):
    model, path = exported["pruned"]
    int8 = quantize_int8(path, tmp_path / "int8.onnx")
    speech, lengths = batch(CASES["three"], 3 * RATE)
    reference = pytorch_log_probs(model, speech, lengths)
    segmentation, _ = onnx_segmentation(int8, num_threads=1)
    log_probs = segmentation(speech, lengths)
    assert OnnxSegmenter(int8).frame_shift == model.frame_shift  # metadata kept
    difference = np.abs(log_probs - reference)
    assert 0 < difference.max() < 0.5  # quantised (not the fp32 graph), and loosely close
    probs, reference_probs = np.exp(log_probs), np.exp(reference)
    assert np.abs(probs - reference_probs).max() < 0.1


def test_bad_onnx_files_are_one_line_errors(exported, tmp_path):
    with pytest.raises(CheckpointError, match="nope.onnx: ONNX model does not exist"):
        onnx_segmentation(tmp_path / "nope.onnx")
    text = tmp_path / "model.pth"
    text.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(CheckpointError, match="model.pth: not a readable ONNX model"):
        onnx_segmentation(text)
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2).eval(), (torch.zeros(1, 2),), str(plain),
                      dynamo=False, input_names=["speech"])
    with pytest.raises(CheckpointError, match="plain.onnx: ONNX model without the metadata"):
        onnx_segmentation(plain)


def test_missing_onnxruntime_is_one_line_error(exported, monkeypatch):
    _, path = exported["pruned"]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=f"{path}: .*needs the onnxruntime package"):
        onnx_segmentation(path)


def test_waveform_normalising_wavlm_exports(tmp_path, one_torch_thread):
    """Large-type WavLMs normalise each window over its own length: a per-row loop in PyTorch,
    :func:`masked_wave_norm` in the graph."""
    import copy

    (unpruned, _), encoder_conf = PRESETS["tiny"]
    model = copy.deepcopy(build_model(unpruned, encoder_conf))
    model.frontend.wavlm.config.normalize_waveform = True
    path = export_onnx(model, tmp_path / "normalising.onnx")
    speech, lengths = batch(CASES["three"], 3 * RATE)
    speech *= 5.0  # the normalisation matters: the model sees another scale without it
    reference = pytorch_log_probs(model, speech, lengths)
    log_probs = onnx_segmentation(path, num_threads=1)[0](speech, lengths)
    assert np.abs(log_probs - reference).max() <= TOLERANCE


def test_other_frontends_are_refused(tmp_path):
    from espnet_prune.diar.encoder import PowersetConformerEncoder
    from espnet_prune.diar.frontends import FbankFrontend
    from espnet_prune.diar.model import PowersetDiarizationModel

    model = PowersetDiarizationModel(FbankFrontend(n_mels=8),
                                     PowersetConformerEncoder(output_size=8, attention_heads=2,
                                                              linear_units=8, num_blocks=1))
    with pytest.raises(ConfigError, match="fbank.onnx: .*wavlm_prunable frontend only"):
        export_onnx(model, tmp_path / "fbank.onnx")
    assert not (tmp_path / "fbank.onnx").exists()
