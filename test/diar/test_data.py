"""Chunking, frame labels and data-dir defects of the diarization data pipeline."""

import numpy as np
import pytest
import soundfile as sf

from espnet_prune.diar.data import (
    DiarizationChunkDataset,
    chunk_region,
    frame_labels,
    load_data_dir,
    num_frames,
)
from espnet_prune.errors import DataError
from espnet_prune.utils.rttm import RttmSegment


def test_chunks_of_train_and_valid_shift():
    assert chunk_region(0.0, 20.0, 8.0, 6.0) == [(0.0, 8.0), (6.0, 14.0), (12.0, 20.0)]
    # the tail not reached by the shift is covered by a window ending at the end
    assert chunk_region(0.0, 20.0, 8.0, 8.0) == [(0.0, 8.0), (8.0, 16.0), (12.0, 20.0)]
    assert chunk_region(5.0, 9.0, 8.0, 6.0) == [(5.0, 9.0)]
    assert chunk_region(0.0, 0.2, 8.0, 6.0) == []


def test_wavlm_frame_count_of_an_8_second_chunk():
    assert num_frames(8 * 16000, 320, 400) == 399
    assert num_frames(8 * 16000, 160, 400) == 798
    assert num_frames(300, 320, 400) == 0


def test_frame_labels_mark_speakers_active_at_frame_centres():
    segments = [
        RttmSegment("r", 1.00, 2.0, "A"),
        RttmSegment("r", 2.50, 3.0, "B"),
        RttmSegment("r", 0.0, 0.5, "C"),  # before the chunk
        RttmSegment("r", 7.9, 4.0, "A"),
    ]
    start, count, shift, length, sr = 1.0, 399, 320, 400, 16000
    labels, speakers = frame_labels(segments, start, count, shift, length, sr)
    # the chunk spans 1.0-9.0 s: A speaks 2.0 + 1.1 s in it, B 3.0 s, C not at all
    assert speakers == ["A", "B"]
    centres = start + (np.arange(count) * shift + length / 2) / sr
    for column, name in enumerate(speakers):
        brute = np.zeros(count, dtype=bool)
        for seg in segments:
            if seg.speaker == name:
                brute |= (centres >= seg.start) & (centres < seg.end)
        assert np.array_equal(labels[:, column].astype(bool), brute), name


def test_dataset_items_have_frame_rate_labels(tiny_data_dir):
    dataset = DiarizationChunkDataset(
        tiny_data_dir, chunk_size=4.0, chunk_shift=3.0, frame_shift=320, frame_length=400
    )
    # two 6 s recordings -> windows (0, 4), (2, 6) each
    assert dataset.keys == [
        "rec1_000000000_000004000",
        "rec1_000002000_000006000",
        "rec2_000000000_000004000",
        "rec2_000002000_000006000",
    ]
    key, item = dataset[dataset.keys[1]]
    assert key == dataset.keys[1]
    assert item["speech"].shape == (64000,) and item["speech"].dtype == np.float32
    assert item["spk_labels"].shape == (num_frames(64000, 320, 400), dataset.num_label_speakers)
    # rec1 between 2 and 6 s: spk1 (2.0-4.0) and spk0 (4.5-5.8, plus 2.0-2.5)
    speech_per_speaker = item["spk_labels"].sum(axis=0) * 0.02
    assert speech_per_speaker[0] == pytest.approx(2.0, abs=0.05)
    assert speech_per_speaker[1] == pytest.approx(0.5 + 1.3, abs=0.05)
    audio, _ = sf.read(tiny_data_dir / "wav" / "rec1.wav", dtype="float32")
    np.testing.assert_array_equal(item["speech"], audio[32000:96000])


@pytest.fixture
def data_dir(tiny_data_dir):
    return tiny_data_dir


def _expect_error(data_dir, *names):
    with pytest.raises(DataError) as info:
        DiarizationChunkDataset(data_dir, chunk_size=2.0, chunk_shift=2.0, frame_shift=320,
                                frame_length=400)
    for name in names:
        assert name in str(info.value), str(info.value)
    return str(info.value)


def test_missing_wav_is_named(data_dir):
    (data_dir / "wav" / "rec2.wav").unlink()
    _expect_error(data_dir, "wav.scp", "rec2.wav")


def test_wrong_sample_rate_is_named(data_dir):
    sf.write(str(data_dir / "wav" / "rec1.wav"), np.zeros(8000 * 6, np.float32), 8000)
    message = _expect_error(data_dir, "rec1.wav")
    assert "8000" in message


def test_multichannel_audio_is_named(data_dir):
    sf.write(str(data_dir / "wav" / "rec2.wav"), np.zeros((16000 * 6, 2), np.float32), 16000)
    message = _expect_error(data_dir, "rec2.wav")
    assert "channel" in message


def test_rttm_line_of_unknown_recording_is_named(data_dir):
    with open(data_dir / "rttm", "a") as fh:
        fh.write("SPEAKER rec9 1 0.5 1.0 <NA> <NA> spk0 <NA> <NA>\n")
    message = _expect_error(data_dir, "rttm:6", "rec9")
    assert str(data_dir / "rttm") in message


def test_malformed_rttm_line_is_named(data_dir):
    lines = (data_dir / "rttm").read_text().splitlines()
    fields = lines[2].split()
    fields[3] = "4.5s"  # start time that is not a number
    lines[2] = " ".join(fields)
    (data_dir / "rttm").write_text("\n".join(lines) + "\n")
    _expect_error(data_dir, str(data_dir / "rttm") + ":3")


def test_validation_is_cached_per_data_dir(data_dir):
    first = load_data_dir(data_dir)
    assert load_data_dir(data_dir) is first
