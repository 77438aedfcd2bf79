"""AISHELL-4 data prep on a miniature corpus with the real layout, and the TextGrid reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpus_fixtures import (
    AISHELL4_DEV,
    DEFAULT_TURNS,
    REPO,
    SECONDS,
    build_aishell4,
    run_script,
    textgrid_text,
    validate,
    write_textgrid,
)

from espnet_prune.corpus import meeting_prep as mp

RECIPE = REPO / "egs2" / "aishell4" / "diar1"
PREP = RECIPE / "local" / "prepare_aishell4.py"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aishell4")
    build_aishell4(root / "corpus")
    (root / "dev.txt").write_text("\n".join(AISHELL4_DEV) + "\n")
    return root


def expected_turns():
    """Fixture turns: one per speaker tier, its two touching words merged."""
    names = ["001-M", "002-F", "003-M"]
    return sorted((names[spk], start, end) for start, end, spk in DEFAULT_TURNS)


# ------------------------------------------------------------------ TextGrid reader


def test_textgrid_long_short_and_utf16_agree(tmp_path):
    tiers = {"spk A": [(0.5, 1.0, "a"), (1.0, 2.0, "b"), (2.5, 3.0, "c")], "B": [(0.8, 1.2, "x")]}
    long_path = write_textgrid(tmp_path / "long.TextGrid", tiers, 4.0)
    short = (
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n4\n<exists>\n2\n'
        '"IntervalTier"\n"spk A"\n0\n4\n5\n0\n0.5\n""\n0.5\n1\n"a"\n1\n2\n"b"\n'
        '2\n2.5\n""\n2.5\n3\n"c"\n'
        '"IntervalTier"\n"B"\n0\n4\n3\n0\n0.8\n""\n0.8\n1.2\n"say ""x"" [1]"\n1.2\n4\n""\n'
    )
    short_path = tmp_path / "short.TextGrid"
    short_path.write_text(short, encoding="utf-8")
    utf16_path = tmp_path / "utf16.TextGrid"
    utf16_path.write_bytes(textgrid_text(tiers, 4.0).encode("utf-16"))
    expected = {"spk_A": [(0.5, 2.0), (2.5, 3.0)], "B": [(0.8, 1.2)]}
    for path in (long_path, short_path, utf16_path):
        assert mp.textgrid_speech(path) == expected, path
    tier_b = mp.read_textgrid(short_path)[1]
    assert tier_b.intervals[1].text == 'say "x" [1]'


def test_textgrid_tier_end_before_file_end_is_accepted(tmp_path):
    # AISHELL-4 has TextGrids whose tier xmax is smaller than the file's xmax
    path = write_textgrid(tmp_path / "x.TextGrid", {"1": [(0.1, 0.9, "w")]}, 2187.436,
                          tier_xmax=2104.492)
    assert mp.textgrid_speech(path) == {"1": [(0.1, 0.9)]}


def test_textgrid_overlap_within_a_speaker_names_file_and_tier(tmp_path):
    text = textgrid_text({"007": [(0.0, 2.0, "a")]}, 4.0).replace(
        "intervals [2]:\n            xmin = 2.0", "intervals [2]:\n            xmin = 1.5"
    )
    path = tmp_path / "bad.TextGrid"
    path.write_text(text)
    with pytest.raises(mp.DataError, match=r"bad\.TextGrid:\d+: tier '007'.*overlaps"):
        mp.textgrid_speech(path)


def test_textgrid_without_speech_is_an_error(tmp_path):
    path = write_textgrid(tmp_path / "silent.TextGrid", {"a": [(0.0, 1.0, "  ")]}, 2.0)
    with pytest.raises(mp.DataError, match=r"silent\.TextGrid: empty annotation"):
        mp.textgrid_speech(path)
    truncated = tmp_path / "cut.TextGrid"
    truncated.write_text(textgrid_text({"a": [(0.0, 1.0, "x")]}, 2.0).rsplit("xmax", 1)[0])
    with pytest.raises(mp.DataError, match=r"cut\.TextGrid: TextGrid ends early"):
        mp.read_textgrid(truncated)


def test_extract_channel_resamples_first_channel(tmp_path):
    import torch
    import torchaudio

    rate = 48000
    t = np.arange(rate) / rate
    first = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = np.stack([first, 0.3 * np.ones_like(first)], axis=1)
    sf.write(str(tmp_path / "in.wav"), data, rate)
    duration = mp.extract_channel(tmp_path / "in.wav", tmp_path / "out.wav")
    out, rate_out = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    assert (rate_out, out.ndim, duration) == (16000, 1, 1.0)
    reference = torchaudio.functional.resample(torch.from_numpy(first), rate, 16000).numpy()
    inner = slice(200, -200)  # filters differ at the edges
    assert np.max(np.abs(out[inner] - reference[inner])) < 0.01
    mtime = (tmp_path / "out.wav").stat().st_mtime_ns
    mp.extract_channel(tmp_path / "in.wav", tmp_path / "out.wav")  # complete: kept as is
    assert (tmp_path / "out.wav").stat().st_mtime_ns == mtime


# ------------------------------------------------------------------ data prep


def test_data_sh_prepares_the_standard_splits(corpus, tmp_path):
    (tmp_path / "db.sh").write_text(f"AISHELL4={corpus / 'corpus'}\n")
    result = run_script(RECIPE / "local" / "data.sh", "--data", tmp_path / "data",
                        "--download", "false", "--dev_list", corpus / "dev.txt", "--nj", "1",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    sizes = {s: len((data / s / "wav.scp").read_text().splitlines()) for s in
             ("train", "dev", "test")}
    assert sizes == {"train": 3, "dev": 3, "test": 3}
    dev_recs = {line.split()[0] for line in (data / "dev" / "wav.scp").read_text().splitlines()}
    assert dev_recs == set(AISHELL4_DEV)

    lines = [line.split() for line in (data / "test" / "rttm").read_text().splitlines()]
    turns = sorted((f[7], float(f[3]), round(float(f[3]) + float(f[4]), 3)) for f in lines
                   if f[1] == "L_R003S01C02")
    assert turns == expected_turns()

    # the wav is channel 0 of the 8-channel flac, 16 kHz mono
    wav = dict(line.split() for line in (data / "test" / "wav.scp").read_text().splitlines())
    out, rate = sf.read(wav["L_R003S01C02"], dtype="float32")
    array, _ = sf.read(str(corpus / "corpus" / "test" / "wav" / "L_R003S01C02.flac"),
                       dtype="float32")
    assert rate == 16000 and out.ndim == 1
    assert np.max(np.abs(out - array[:, 0])) < 1e-3
    assert np.max(np.abs(out - array[:, 1])) > 0.05

    for split in ("train", "dev", "test"):
        summary = validate(data / split, tmp_path / "formatted" / split)
        assert summary["recordings"] == 3
        assert summary["speakers_per_recording"] == 3
        assert abs(summary["hours"] - 3 * SECONDS / 3600) < 1e-4
        assert summary["overlap_fraction_of_speech"] > 0


def broken_copy(corpus: Path, tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(corpus / "corpus", target)
    return target


def run_prep(corpus_dir: Path, corpus: Path, tmp_path: Path):
    return run_script(PREP, "--corpus", corpus_dir, "--data", tmp_path / "data",
                      "--dev_list", corpus / "dev.txt", "--nj", "1")


def test_missing_meeting_audio_names_the_file(corpus, tmp_path):
    target = broken_copy(corpus, tmp_path)
    (target / "train_M" / "wav" / "20200617_M_R001S03C01.flac").unlink()
    result = run_prep(target, corpus, tmp_path)
    assert result.returncode == 2
    assert "20200617_M_R001S03C01.flac: meeting audio file does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_overlapping_intervals_of_one_speaker_name_the_file(corpus, tmp_path):
    target = broken_copy(corpus, tmp_path)
    grid = target / "test" / "TextGrid" / "M_R003S01C01.TextGrid"
    tiers = {"001-M": [(0.2, 1.6, "a"), (1.2, 2.0, "b")], "002-F": [(2.0, 3.0, "c")]}
    # Praat never writes this; build it by hand: the second interval starts inside the first
    text = textgrid_text({"001-M": [(0.2, 1.6, "a")], "002-F": tiers["002-F"]}, SECONDS)
    text = text.replace(
        "intervals [3]:\n            xmin = 1.6 \n            xmax = 4.0 \n"
        '            text = "" ',
        "intervals [3]:\n            xmin = 1.2 \n            xmax = 2.0 \n"
        '            text = "b" ',
    )
    assert "xmin = 1.2" in text
    grid.write_text(text)
    result = run_prep(target, corpus, tmp_path)
    assert result.returncode == 2
    assert "M_R003S01C01.TextGrid:" in result.stderr and "tier '001-M'" in result.stderr
    assert "overlaps" in result.stderr and "Traceback" not in result.stderr


def test_empty_annotation_names_the_file(corpus, tmp_path):
    target = broken_copy(corpus, tmp_path)
    grid = target / "train_S" / "TextGrid" / "20200806_S_R001S02C01.TextGrid"
    write_textgrid(grid, {"001-M": [], "002-F": []}, SECONDS)
    result = run_prep(target, corpus, tmp_path)
    assert result.returncode == 2
    assert "20200806_S_R001S02C01.TextGrid: empty annotation" in result.stderr


def test_missing_textgrid_and_unknown_dev_session_are_named(corpus, tmp_path):
    target = broken_copy(corpus, tmp_path)
    (target / "train_L" / "TextGrid" / "20200707_L_R001S02C01.TextGrid").unlink()
    result = run_prep(target, corpus, tmp_path)
    assert result.returncode == 2
    assert "20200707_L_R001S02C01.TextGrid: annotation file does not exist" in result.stderr
    (tmp_path / "bad_dev.txt").write_text("20991231_L_R009S09C09\n")
    result = run_script(PREP, "--corpus", corpus / "corpus", "--data", tmp_path / "d2",
                        "--dev_list", tmp_path / "bad_dev.txt")
    assert result.returncode == 2 and "20991231_L_R009S09C09 not found" in result.stderr


def test_stored_dev_list_has_the_papers_18_sessions():
    sessions = mp.read_list(RECIPE / "local" / "aishell4_dev_sessions.txt")
    assert len(sessions) == len(set(sessions)) == 18
    assert all(s.split("_")[1] in ("L", "M", "S") for s in sessions)


def test_data_sh_downloads_by_default_unless_complete(corpus, tmp_path):
    """local/data.sh asks the prep to download (its default); a corpus marked complete is not
    downloaded again."""
    copy = tmp_path / "corpus"
    shutil.copytree(corpus / "corpus", copy)
    (tmp_path / "db.sh").write_text(f"AISHELL4={copy}\n")
    mirror = tmp_path / "mirror"  # holds no archive: any download attempt fails, offline
    mirror.mkdir()
    args = ("--data", tmp_path / "data", "--dev_list", corpus / "dev.txt", "--nj", "1",
            "--url", mirror.as_uri())
    attempt = run_script(RECIPE / "local" / "data.sh", *args, cwd=tmp_path)
    assert attempt.returncode == 1
    assert "Downloading AISHELL-4 (OpenSLR 111) into" in attempt.stderr
    assert "missing: " in attempt.stderr and "train_L.tar.gz" in attempt.stderr
    (copy / ".complete").touch()
    assert run_script(RECIPE / "local" / "data.sh", *args, cwd=tmp_path).returncode == 0


def test_download_unless_complete_fetches_and_extracts_once(tmp_path):
    import tarfile

    from espnet_prune.corpus.download import download_unless_complete

    (tmp_path / "src" / "part").mkdir(parents=True)
    (tmp_path / "src" / "part" / "a.txt").write_text("a")
    with tarfile.open(tmp_path / "part.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "part", arcname="part")
    target = tmp_path / "corpus"
    url = (tmp_path).as_uri()
    assert download_unless_complete(target, url, ["part.tar.gz"], "test corpus") == 0
    assert (target / "part" / "a.txt").read_text() == "a" and (target / ".complete").exists()
    (tmp_path / "part.tar.gz").unlink()  # complete: the source is not asked again
    assert download_unless_complete(target, url, ["part.tar.gz"], "test corpus") == 0
    (target / ".complete").unlink()
    assert download_unless_complete(target, url, ["part.tar.gz"], "test corpus") == 1
