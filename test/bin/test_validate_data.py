import json
import os
import subprocess
import sys

import pytest

from espnet_prune.bin import validate_data
from espnet_prune.utils.datadir import read_scp, read_uem
from espnet_prune.utils.rttm import read_rttm


def test_formats_valid_dir(tiny_data_dir, tmp_path):
    out = tmp_path / "dump"
    assert validate_data.main([str(tiny_data_dir), str(out)]) == 0
    wavs = read_scp(out / "wav.scp")
    assert sorted(wavs) == ["rec1", "rec2"]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in wavs.values())
    durations = dict(line.split() for line in (out / "reco2dur").read_text().splitlines())
    assert float(durations["rec1"]) == pytest.approx(6.0)
    assert read_rttm(out / "rttm") == read_rttm(tiny_data_dir / "rttm")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recordings"] == 2
    # rec1: speech 0.2-5.8 minus the 4.0-4.5 gap = 5.1 s, overlap 2.0-2.5; rec2: 5.3 s, none
    assert summary["overlap_fraction_of_speech"] == pytest.approx(0.5 / 10.4, abs=1e-3)
    assert summary["speakers_per_recording"] == 2


def test_missing_uem_becomes_whole_recordings(tiny_data_dir, tmp_path):
    (tiny_data_dir / "uem").unlink()
    out = tmp_path / "dump"
    validate_data.main([str(tiny_data_dir), str(out)])
    uem = read_uem(out / "uem")
    assert uem["rec2"] == [(0.0, pytest.approx(6.0))]


def test_relative_wav_paths_are_resolved(tiny_data_dir, tmp_path, monkeypatch):
    scp = tiny_data_dir / "wav.scp"
    lines = [line.split() for line in scp.read_text().splitlines()]
    scp.write_text("".join(f"{k} wav/{os.path.basename(v)}\n" for k, v in lines))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "dump"
    validate_data.main([str(tiny_data_dir), str(out)])
    assert all(os.path.isfile(p) for p in read_scp(out / "wav.scp").values())


def test_unlabelled_dir_needs_flag(tiny_data_dir, tmp_path):
    (tiny_data_dir / "rttm").unlink()
    out = tmp_path / "dump"
    from espnet_prune.errors import DataError

    with pytest.raises(DataError, match="rttm"):
        validate_data.main([str(tiny_data_dir), str(out)])
    assert validate_data.main([str(tiny_data_dir), str(out), "--require_rttm", "false"]) == 0
    assert not (out / "rttm").exists()


def test_cli_bad_rttm_is_one_line_error(tiny_data_dir, tmp_path):
    with open(tiny_data_dir / "rttm", "a") as fh:
        fh.write("SPEAKER rec1 1 5.0 9.0 <NA> <NA> spk0 <NA> <NA>\n")
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_prune.bin.validate_data", str(tiny_data_dir),
         str(tmp_path / "dump")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "rttm" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "dump" / "wav.scp").exists()


def test_no_espnet2_import(tiny_data_dir, tmp_path):
    code = (
        "import sys; from espnet_prune.bin import validate_data;"
        f"validate_data.main([{str(tiny_data_dir)!r}, {str(tmp_path / 'd')!r}]);"
        "assert 'espnet2' not in sys.modules and 's3prl' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
