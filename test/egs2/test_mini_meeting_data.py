"""The mini_meeting corpus simulation: valid data dirs, the promised meeting statistics,
disjoint speakers, determinism, and voices that the default speaker encoder tells apart."""

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from espnet_prune.utils.datadir import read_uem, validate_data_dir

LOCAL = Path(__file__).resolve().parents[2] / "egs2" / "mini_meeting" / "diar1" / "local"


def load(name):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LOCAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(LOCAL))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(LOCAL))
    return module


SIM_ARGS = ["--num_train", "2", "--num_dev", "1", "--num_test", "2", "--min_duration", "30",
            "--max_duration", "36"]


def simulate(root: Path):
    subprocess.run(
        [sys.executable, str(LOCAL / "simulate_meetings.py"), "--data_dir", "data", "--wav_dir",
         "wav", *SIM_ARGS],
        cwd=root, check=True, capture_output=True, text=True,
    )
    return root / "data"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("mini"))


def active_counts(segments, step=0.01):
    end = max(s.start + s.duration for s in segments)
    counts = {}
    for seg in segments:
        frames = np.zeros(int(end / step) + 2, dtype=int)
        frames[int(round(seg.start / step)) : int(round((seg.start + seg.duration) / step))] = 1
        counts.setdefault(seg.speaker, np.zeros_like(frames))
        counts[seg.speaker] = counts[seg.speaker] + frames
    return counts


def test_data_dirs_are_valid_and_meetings_as_specified(corpus):
    speakers_of = {}
    for split, count in (("train", 2), ("dev", 1), ("test", 2)):
        data = validate_data_dir(corpus / split)
        assert len(data.recordings) == count
        uem = read_uem(corpus / split / "uem")
        for rec in data.recordings:
            assert 30.0 <= data.durations[rec] <= 36.0 + 1e-3
            assert uem[rec] == [(0.0, pytest.approx(data.durations[rec], abs=1e-3))]
            counts = active_counts(data.rttm[rec])
            assert 2 <= len(counts) <= 4
            # no speaker overlaps itself; never more than two speakers at once
            assert all(c.max() <= 1 for c in counts.values())
            total = sum(counts.values())
            assert total.max() == 2
            overlap = (total >= 2).sum() / (total >= 1).sum()
            assert 0.10 <= overlap <= 0.20, (rec, overlap)
            speakers_of.setdefault(split, set()).update(counts)
    assert not speakers_of["train"] & speakers_of["test"]
    assert not speakers_of["train"] & speakers_of["dev"]
    assert not speakers_of["dev"] & speakers_of["test"]


def test_sample_set_is_pyannote_sample(corpus):
    data = validate_data_dir(corpus / "sample")
    assert data.recordings == ["sample"]
    assert data.wavs["sample"].endswith("pyannote/audio/sample/sample.wav")
    assert data.durations["sample"] == pytest.approx(30.0)
    assert {seg.speaker for seg in data.rttm["sample"]} == {"speaker90", "speaker91"}


def test_deterministic(corpus, tmp_path):
    again = simulate(tmp_path)
    for split in ("train", "test"):
        assert (again / split / "rttm").read_text() == (corpus / split / "rttm").read_text()
        for line_a, line_b in zip((again / split / "wav.scp").read_text().splitlines(),
                                  (corpus / split / "wav.scp").read_text().splitlines()):
            digest = [hashlib.md5(Path(line.split()[1]).read_bytes()).hexdigest()
                      for line in (line_a, line_b)]
            assert digest[0] == digest[1]
    summary = json.loads((tmp_path / "wav" / "summary.json").read_text())
    assert summary["test"]["recordings"] == 2


def test_variant_split_is_disjoint_and_complete():
    sim = load("simulate_meetings")
    variants = [f"v{i}" for i in range(30)]
    sets = sim.split_variants(variants, seed=1, num_dev=5, num_test=7)
    assert len(sets["dev"]) == 5 and len(sets["test"]) == 7
    assert sorted(sets["train"] + sets["dev"] + sets["test"]) == sorted(variants)
    with pytest.raises(ValueError, match="voice variants"):
        sim.split_variants(variants, seed=1, num_dev=20, num_test=10)


def test_overlap_ratio():
    sim = load("simulate_meetings")
    # speech 0-10 (union), overlapped 4-6
    assert sim.overlap_ratio([(0, 6, 0), (4, 10, 1)]) == pytest.approx(0.2)
    assert sim.overlap_ratio([(0, 1, 0), (2, 3, 1)]) == 0.0


def test_resemblyzer_separates_the_synthetic_voices():
    check = load("check_speakers")
    result = check.main(
        ["--split", "test", "--utterances_per_speaker", "3", "--max_speakers", "6"]
    )
    assert result["same_speaker_cosine"] > result["other_speaker_cosine"] + 0.15
    assert result["nearest_centroid_accuracy"] >= 0.9
