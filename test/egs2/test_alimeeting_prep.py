"""AliMeeting far-field data prep on a miniature corpus with the real layout and names."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpus_fixtures import (
    ALIMEETING_SESSIONS,
    DEFAULT_TURNS,
    REPO,
    SECONDS,
    build_alimeeting,
    run_script,
    validate,
    write_textgrid,
)

RECIPE = REPO / "egs2" / "alimeeting" / "diar1"
PREP = RECIPE / "local" / "prepare_alimeeting.py"
SPLIT_OF = {"Train_Ali_far": "train", "Eval_Ali/Eval_Ali_far": "dev",
            "Test_Ali/Test_Ali_far": "test"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_alimeeting(tmp_path_factory.mktemp("alimeeting") / "corpus")


def test_data_sh_prepares_train_eval_test(corpus, tmp_path):
    (tmp_path / "db.sh").write_text(f"ALIMEETING={corpus}\n")
    result = run_script(RECIPE / "local" / "data.sh", "--data", tmp_path / "data", "--download",
                        "false", "--nj", "1", "--prefix", "alimeeting_", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    for part, sessions in ALIMEETING_SESSIONS.items():
        split = data / f"alimeeting_{SPLIT_OF[part]}"
        wavs = dict(line.split() for line in (split / "wav.scp").read_text().splitlines())
        assert sorted(wavs) == sorted(sessions)  # named after the wav: <room>_<meeting>_<mic>
        out, rate = sf.read(wavs[sessions[0]], dtype="float32")
        array, _ = sf.read(str(corpus / part / "audio_dir" / f"{sessions[0]}.wav"),
                           dtype="float32")
        assert rate == 16000 and out.ndim == 1 and np.max(np.abs(out - array[:, 0])) < 1e-3
        summary = validate(split, tmp_path / "dump" / split.name)
        assert summary["recordings"] == len(sessions)
        assert summary["speakers_per_recording"] == 3
    rttm = [line.split() for line in (data / "alimeeting_dev" / "rttm").read_text().splitlines()]
    got = sorted((f[7], float(f[3]), round(float(f[3]) + float(f[4]), 3)) for f in rttm)
    names = [f"R8001_M8004_F_SPK0{100 + k}" for k in range(3)]
    assert got == sorted((names[s], a, b) for a, b, s in DEFAULT_TURNS)


def copy(corpus: Path, tmp_path: Path) -> Path:
    shutil.copytree(corpus, tmp_path / "corpus")
    return tmp_path / "corpus"


def test_missing_meeting_audio_names_the_file(corpus, tmp_path):
    broken = copy(corpus, tmp_path)
    (broken / "Test_Ali" / "Test_Ali_far" / "audio_dir" / "R8004_M8005_MS803.wav").unlink()
    result = run_script(PREP, "--corpus", broken, "--data", tmp_path / "data", "--nj", "1")
    assert result.returncode == 2
    assert "R8004_M8005_MS*.wav: meeting audio file does not exist" in result.stderr
    assert "R8004_M8005.TextGrid" in result.stderr and "Traceback" not in result.stderr


def test_overlap_within_one_speaker_and_empty_annotation_name_the_file(corpus, tmp_path):
    broken = copy(corpus, tmp_path)
    grid = broken / "Train_Ali_far" / "textgrid_dir" / "R0004_M0012.TextGrid"
    text = grid.read_text()
    # the speaker's second word starts before its first ends
    first_word_end = f"xmax = {round((DEFAULT_TURNS[0][0] + DEFAULT_TURNS[0][1]) / 2, 3)} "
    assert first_word_end in text
    grid.write_text(text.replace(f"xmin = {first_word_end[7:]}", "xmin = 0.5 ", 1))
    result = run_script(PREP, "--corpus", broken, "--data", tmp_path / "data", "--nj", "1")
    assert result.returncode == 2
    assert "R0004_M0012.TextGrid:" in result.stderr and "overlaps" in result.stderr
    assert "R0004_M0012_F_SPK0100" in result.stderr

    write_textgrid(grid, {"R0004_M0012_F_SPK0100": [(0.0, 1.0, "")]}, SECONDS)
    result = run_script(PREP, "--corpus", broken, "--data", tmp_path / "data", "--nj", "1")
    assert result.returncode == 2
    assert "R0004_M0012.TextGrid: empty annotation" in result.stderr


def test_missing_part_directory_is_named(corpus, tmp_path):
    broken = copy(corpus, tmp_path)
    shutil.rmtree(broken / "Eval_Ali")
    result = run_script(PREP, "--corpus", broken, "--data", tmp_path / "data")
    assert result.returncode == 2
    assert "Eval_Ali/Eval_Ali_far: directory does not exist" in result.stderr
