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
