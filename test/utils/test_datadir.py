import numpy as np
import pytest

from espnet_prune.errors import DataError
from espnet_prune.utils.audio import read_audio
from espnet_prune.utils.datadir import read_scp, read_uem, validate_data_dir


def test_valid_dir(tiny_data_dir):
    data = validate_data_dir(tiny_data_dir)
    assert data.recordings == ["rec1", "rec2"]
    assert data.durations["rec1"] == pytest.approx(6.0)
    assert {s.speaker for s in data.rttm["rec1"]} == {"spk0", "spk1"}
    assert data.uem == {"rec1": [(0.0, 6.0)], "rec2": [(0.0, 6.0)]}


def test_read_audio_slice(tiny_data_dir):
    wav = validate_data_dir(tiny_data_dir).wavs["rec1"]
    x = read_audio(wav, start=1.0, end=1.5)
    assert x.dtype == np.float32 and x.shape == (8000,)


def test_missing_wav(tiny_data_dir):
    (tiny_data_dir / "wav" / "rec2.wav").unlink()
    with pytest.raises(DataError) as err:
        validate_data_dir(tiny_data_dir)
    assert "wav.scp:2" in str(err.value) and "rec2.wav" in str(err.value)
    assert "does not exist" in str(err.value)


def test_wrong_sample_rate(tiny_data_dir, write_wav):
    write_wav(tiny_data_dir / "wav" / "rec1.wav", seconds=6.0, sr=8000)
    with pytest.raises(DataError, match=r"rec1\.wav: sample rate is 8000 Hz; expected 16000"):
        validate_data_dir(tiny_data_dir)


def test_stereo(tiny_data_dir, write_wav):
    write_wav(tiny_data_dir / "wav" / "rec1.wav", seconds=6.0, channels=2)
    with pytest.raises(DataError, match=r"rec1\.wav: audio has 2 channels"):
        validate_data_dir(tiny_data_dir)


def test_empty_audio(tiny_data_dir, write_wav):
    write_wav(tiny_data_dir / "wav" / "rec1.wav", data=np.zeros(0, dtype=np.float32))
    with pytest.raises(DataError, match=r"rec1\.wav: audio file is empty"):
        validate_data_dir(tiny_data_dir)


def test_rttm_unknown_recording(tiny_data_dir):
    with open(tiny_data_dir / "rttm", "a") as fh:
        fh.write("SPEAKER ghost 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(DataError, match=r"rttm:6: recording 'ghost' is not in"):
        validate_data_dir(tiny_data_dir)


def test_rttm_past_end(tiny_data_dir):
    with open(tiny_data_dir / "rttm", "a") as fh:
        fh.write("SPEAKER rec1 1 5.0 3.0 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(DataError, match=r"rttm:6: segment ends at 8.000 s"):
        validate_data_dir(tiny_data_dir)


def test_malformed_rttm_line(tiny_data_dir):
    (tiny_data_dir / "rttm").write_text("SPEAKER rec1 1 x 1.0 <NA> <NA> A <NA>\n")
    with pytest.raises(DataError, match=r"rttm:1: start time 'x' is not a number"):
        validate_data_dir(tiny_data_dir)


def test_missing_rttm_when_required(tiny_data_dir):
    (tiny_data_dir / "rttm").unlink()
    with pytest.raises(DataError, match="RTTM file does not exist"):
        validate_data_dir(tiny_data_dir)
    assert validate_data_dir(tiny_data_dir, require_rttm=False).rttm == {}


def test_scp_and_uem_errors(tmp_path):
    (tmp_path / "wav.scp").write_text("a x.wav\na y.wav\n")
    with pytest.raises(DataError, match=r"wav.scp:2: duplicate key 'a'"):
        read_scp(tmp_path / "wav.scp")
    (tmp_path / "uem").write_text("a 1 5 2\n")
    with pytest.raises(DataError, match=r"uem:1: need 0 <= start < end"):
        read_uem(tmp_path / "uem")
