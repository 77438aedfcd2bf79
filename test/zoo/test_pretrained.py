"""Share and use a trained model: diar_pack → archive → Diarizer.from_pretrained anywhere, the
same RTTM as diar_inference on the exp dir; every audio input kind; short audio; the
DiarizeSpeech interface."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet_prune.bin import diar_inference, diar_pack
from espnet_prune.errors import ConfigError, DataError
from espnet_prune.utils.rttm import read_rttm

from .trained_model import INFERENCE_CONFIG


def segments(annotation_or_rttm):
    """(start, end, speaker) rounded to the millisecond, sorted."""
    if isinstance(annotation_or_rttm, list):
        return sorted((round(s.start, 3), round(s.start + s.duration, 3), s.speaker)
                      for s in annotation_or_rttm)
    return sorted((round(seg.start, 3), round(seg.end, 3), label)
                  for seg, _, label in annotation_or_rttm.itertracks(yield_label=True))


def test_packed_model_diarizes_elsewhere_like_cli_on_exp_dir(trained_exp, tmp_path,
                                                             monkeypatch):
    from espnet_prune import Diarizer

    wav = trained_exp.parents[2] / "data" / "wav" / "rec1.wav"
    exp = tmp_path / "recipe" / "exp" / "teacher"  # this test's own copy: it deletes it
    shutil.copytree(trained_exp, exp)
    cli_out = tmp_path / "cli"
    # no --config: the inference.yaml stored in the exp dir is the default
    assert diar_inference.main(["--model_file", str(exp / "valid.loss.ave.pth"),
                                "--train_config", str(exp / "config.yaml"),
                                "--audio", str(wav), "--output_dir", str(cli_out),
                                "--no_progress"]) == 0
    expected = segments(read_rttm(cli_out / "rttm")["rec1"])
    assert len(expected) > 1

    archive = tmp_path / "packed" / "teacher.zip"
    assert diar_pack.main(["--model_dir", str(exp), "--output", str(archive),
                           "--command", "./run.sh --fast true"]) == 0
    # a recipient: a copy of the archive and the audio, no recipe, no exp dir, another cwd
    recipient = tmp_path / "recipient"
    recipient.mkdir()
    shutil.copy(archive, recipient / "teacher.zip")
    shutil.copy(wav, recipient / "rec1.wav")
    shutil.rmtree(tmp_path / "recipe")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    unpacked = recipient / "unpacked"
    with zipfile.ZipFile(recipient / "teacher.zip") as packed:
        packed.extractall(unpacked)
        assert "README.md" in packed.namelist()

    for source in (recipient / "teacher.zip", unpacked):
        diarizer = Diarizer.from_pretrained(source, cache_dir=str(tmp_path / "cache"))
        assert diarizer.pipeline.config.window == INFERENCE_CONFIG["window"]  # not 8 s
        assert diarizer.pipeline.config.step == INFERENCE_CONFIG["step"]
        annotation = diarizer(recipient / "rec1.wav")
        assert annotation.uri == "rec1"
        assert segments(annotation) == expected, source
        # and as RTTM
        rttm = tmp_path / "api.rttm"
        with open(rttm, "w") as file:
            annotation.write_rttm(file)
        assert segments(read_rttm(rttm)["rec1"]) == expected

    card = (unpacked / "README.md").read_text()
    assert "./run.sh --fast true" in card and "Diarizer.from_pretrained" in card


@pytest.fixture(scope="module")
def diarizer(trained_exp):
    from espnet_prune import Diarizer

    return Diarizer.from_pretrained(trained_exp)


@pytest.fixture(scope="module")
def meeting_8k(tmp_path_factory):
    """Two alternating synthetic voices at 8 kHz, as a float WAV file."""
    from diar_fixtures import synth_speaker_signal

    rate = 8000
    audio = np.concatenate([synth_speaker_signal(int(1.5 * rate), spk, rate, seed)
                            for seed, spk in enumerate((0, 2, 0, 2))])
    path = tmp_path_factory.mktemp("audio") / "meeting8k.wav"
    sf.write(path, audio, rate, subtype="FLOAT")
    return path


def test_path_numpy_torch_and_bytesio_give_the_same_annotation(diarizer, meeting_8k):
    samples, rate = sf.read(meeting_8k, dtype="float32")
    assert rate == 8000
    from_path = diarizer(meeting_8k)
    assert len(from_path) > 0
    expected = segments(from_path)
    assert segments(diarizer(samples, sample_rate=8000)) == expected
    assert segments(diarizer(torch.from_numpy(samples), sample_rate=8000)) == expected
    assert segments(diarizer(samples[None], sample_rate=8000)) == expected  # [1, T]
    assert segments(diarizer(io.BytesIO(meeting_8k.read_bytes()))) == expected
    # resampled, not read as 16 kHz: the segments span the 6 s of audio
    assert max(end for _, end, _ in expected) > 5.0


def test_streamed_16k_file_equals_its_samples(diarizer, meeting_8k, tmp_path):
    import torchaudio.functional

    samples, _ = sf.read(meeting_8k, dtype="float32")
    at_16k = torchaudio.functional.resample(torch.from_numpy(samples), 8000, 16000).numpy()
    path = tmp_path / "meeting16k.wav"
    sf.write(path, at_16k, 16000, subtype="FLOAT")
    assert segments(diarizer(path)) == segments(diarizer(at_16k, sample_rate=16000))


def test_speaker_counts_and_embeddings(diarizer, meeting_8k):
    annotation, embeddings = diarizer(meeting_8k, num_speakers=2, return_embeddings=True)
    assert len(annotation.labels()) == 2
    assert set(embeddings) == set(annotation.labels())
    assert all(e.shape == (256,) and np.isfinite(e).all() for e in embeddings.values())
    one = diarizer(meeting_8k, max_speakers=1)
    assert len(one.labels()) == 1
    with pytest.raises(ConfigError):
        diarizer(meeting_8k, min_speakers=3, max_speakers=2)


@pytest.mark.parametrize("extra", [-400, -1, 0, 1, 160, 31_600, 32_000, 32_001, 40_000])
def test_short_and_odd_lengths(diarizer, extra):
    """Audio of at least one model frame (400 samples) is diarized, as one padded window when
    shorter than the 2 s window; below one frame it is one DataError naming the length."""
    frame = diarizer.pipeline.frame_length
    length = frame + extra
    rng = np.random.default_rng(length)
    audio = (0.1 * rng.standard_normal(length)).astype(np.float32)
    if length < frame:
        with pytest.raises(DataError, match=f"{length} samples.*shorter than one model frame"):
            diarizer(audio, sample_rate=16000)
        return
    annotation = diarizer(audio, sample_rate=16000)
    for seg in annotation.get_timeline():
        assert 0 <= seg.start < seg.end <= length / 16000


@pytest.mark.parametrize("audio", [np.zeros(1, np.float32), np.zeros(0, np.float32)])
def test_one_sample_and_empty(diarizer, audio):
    with pytest.raises(DataError, match=f"{len(audio)} samples"):
        diarizer(audio, sample_rate=16000)


def test_bad_audio_inputs(diarizer, tmp_path):
    with pytest.raises(ConfigError, match="sample_rate"):
        diarizer(np.zeros(16000, np.float32))
    with pytest.raises(DataError, match="shape"):
        diarizer(np.zeros((2, 3, 4), np.float32), sample_rate=16000)
    with pytest.raises(DataError, match="does not exist"):
        diarizer(tmp_path / "missing.wav")
    with pytest.raises(DataError, match="NaN"):
        diarizer(np.full(16000, np.nan, np.float32), sample_rate=16000)


def test_from_pretrained_sources_that_are_not_models(tmp_path):
    from espnet_prune import Diarizer

    with pytest.raises(ConfigError, match="no such file"):
        Diarizer.from_pretrained(tmp_path / "missing.zip")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ConfigError, match="not a model folder nor a packed archive"):
        Diarizer.from_pretrained(tmp_path / "notes.txt")
    with pytest.raises(ConfigError, match="not a model folder"):
        Diarizer.from_pretrained(tmp_path)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ConfigError, match="not a packed model archive"):
        Diarizer.from_pretrained(tmp_path / "broken.zip", cache_dir=str(tmp_path / "c"))
    with pytest.raises(ConfigError, match="espnet_model_zoo"):
        Diarizer.from_pretrained("someone/some_model_tag")


def test_diarize_speech_interface(diarizer, meeting_8k):
    from espnet_prune import DiarizeSpeech

    speech = DiarizeSpeech(**{k: v for k, v in diarizer.files.items() if v})
    samples, _ = sf.read(meeting_8k, dtype="float32")
    activity = speech(np.stack([samples, samples]), fs=8000)
    frames = (len(samples) * 2 - 400) // diarizer.pipeline.frame_shift + 1
    annotation = diarizer(samples, sample_rate=8000)
    assert activity.shape == (2, frames, len(annotation.labels()))
    assert np.array_equal(activity[0], activity[1])
    # each speaker's active frames add up to its speech time (within a frame per segment)
    hop = diarizer.pipeline.frame_shift / 16000
    labels = sorted(annotation.labels())
    for column, label in enumerate(labels):
        seconds = annotation.label_duration(label)
        assert abs(activity[0, :, column].sum() * hop - seconds) <= hop * (
            len(list(annotation.label_timeline(label))) + 1)


def wavlm_exp_dir(root):
    """An exp dir of a tiny (untrained) wavlm_prunable model, the frontend ONNX export takes,
    with the inference.yaml of the trained model."""
    import yaml

    from espnet_prune.measure.bench import wavlm_preset
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    given = root / "train.yaml"
    given.write_text(yaml.safe_dump({
        "frontend": "wavlm_prunable",
        "frontend_conf": {"config": wavlm_preset("tiny_pruned").to_dict()},
        "encoder": "conformer",
        "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64,
                         "num_blocks": 1, "cnn_module_kernel": 7}}))
    args = PowersetDiarizationTask.get_parser().parse_args(["--config", str(given)])
    torch.manual_seed(0)
    model = PowersetDiarizationTask.build_model(args)
    with torch.no_grad():  # no silence: the random model then picks speakers by its input
        model.classifier.bias[0] = -10.0
    exp = root / "exp" / "wavlm"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    (exp / "inference.yaml").write_text(yaml.safe_dump(INFERENCE_CONFIG))
    return exp


def test_onnx_export_packs_the_same_way(trained_exp, tmp_path):
    pytest.importorskip("onnxruntime")  # the optional extra [onnx], as test_diar_export
    from espnet_prune import Diarizer
    from espnet_prune.bin import diar_export

    exp = wavlm_exp_dir(tmp_path)
    onnx, archive = tmp_path / "model.onnx", tmp_path / "wavlm_onnx.zip"
    assert diar_export.main(["--model_file", str(exp / "valid.loss.ave.pth"),
                             "--train_config", str(exp / "config.yaml"),
                             "--output", str(onnx), "--pack", str(archive)]) == 0
    with zipfile.ZipFile(archive) as packed:
        names = set(packed.namelist())
    assert {"README.md", "meta.yaml", "exp/wavlm/model.onnx", "exp/wavlm/inference.yaml",
            "exp/wavlm/config.yaml"} <= names
    assert not any(name.endswith(".pth") for name in names)
    diarizer = Diarizer.from_pretrained(archive, cache_dir=str(tmp_path / "cache"))
    assert diarizer.files["model_file"].endswith("model.onnx")
    wav = trained_exp.parents[2] / "data" / "wav" / "rec2.wav"
    out = tmp_path / "cli"
    assert diar_inference.main(["--backend", "onnxruntime", "--model_file", str(onnx),
                                "--audio", str(wav), "--output_dir", str(out),
                                "--no_progress", "--config", str(exp / "inference.yaml")]) == 0
    expected = segments(read_rttm(out / "rttm", allow_empty=True).get("rec2", []))
    assert expected and segments(diarizer(wav)) == expected


def test_cli_tells_audio_from_wav_scp(trained_exp, tmp_path):
    wav = trained_exp.parents[2] / "data" / "wav" / "rec1.wav"
    model = ["--model_file", str(trained_exp / "valid.loss.ave.pth"),
             "--train_config", str(trained_exp / "config.yaml"),
             "--output_dir", str(tmp_path / "out"), "--no_progress"]
    with pytest.raises(ConfigError, match="an audio file, not a wav.scp list; pass audio "
                                          "files with --audio"):
        diar_inference.main([*model, "--wav_scp", str(wav)])
    scp = tmp_path / "wav.scp"
    scp.write_text(f"rec1 {wav}\n")
    with pytest.raises(ConfigError, match="not an audio file soundfile can read"):
        diar_inference.main([*model, "--audio", str(scp)])
    with pytest.raises(ConfigError, match="either --wav_scp"):
        diar_inference.main(model)
    one_sample = tmp_path / "click.wav"
    sf.write(one_sample, np.zeros(1, np.float32), 16000)
    with pytest.raises(DataError, match="click: audio of 1 samples"):
        diar_inference.main([*model, "--audio", str(one_sample)])


def test_relative_files_of_a_moved_inference_config(tmp_path, monkeypatch):
    from espnet_prune.infer.run import load_inference_config

    folder = tmp_path / "model"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "plda.npz").write_bytes(b"x")
    (folder / "inference.yaml").write_text("clustering: {name: vbx, plda: files/plda.npz}\n")
    monkeypatch.chdir(tmp_path)
    conf = load_inference_config(str(folder / "inference.yaml"))
    assert conf["clustering"]["plda"] == str(folder / "files" / "plda.npz")
    # a path that exists from the current directory keeps its meaning (the recipes' exp/...)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "plda.npz").write_bytes(b"y")
    assert load_inference_config(str(folder / "inference.yaml"))["clustering"]["plda"] == \
        "files/plda.npz"
