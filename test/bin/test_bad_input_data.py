"""Hostile and broken input through the real CLI entry points.

Every case runs ``run_main(<cli>.main, argv)`` in-process, as ``python -m espnet_prune.bin.<cli>``
does, and asserts exit status 2 with one ``error: ...`` line on stderr (no traceback) that names
the problem; then, where it matters, that nothing final-looking was written.

| class | input | CLI | the one line contains |
|---|---|---|---|
| A | ``--num_speakers 0`` / ``-3``, ``--max_speakers 0`` | inf | ``must be >= 1`` |
| A | ``--min_speakers 5 --max_speakers 2`` | inf | ``min_speakers=5 is larger`` |
| A | ``--num_speakers 4 --max_speakers 2`` (or YAML bound) | inf | ``num_speakers=4 conflicts`` |
| A | YAML ``num_speakers: two`` | inf | ``whole number`` |
| A | ``--num_speakers 50`` (valid: warning, fewer) | inf | not refused; reaches the model |
| B | wav.scp key ``../evil``, ``a/b``, ``a\\b``, ``..``, ``.``, ESC | inf, val | ``:2: key`` |
| B | ``--output_dir`` an existing file | inf, val | ``is an existing file`` |
| B | ``--output_dir`` under /sys (unwritable even for root) | inf | ``cannot create`` |
| B | ``--json`` inside a file / a directory | score | ``not a directory`` / ``is a dir..`` |
| B | disk full while writing the RTTMs | diarize_recordings | ``cannot write``; no final file |
| C | hypothesis in samples (ESPnet's ``rttm`` type) | score | ``look like samples`` |
| C | reference in samples, UEM in seconds | score | ``look like samples`` |
| C | no hypothesis recording is in the reference | score | ``none of its`` |
| C | empty hypothesis (valid: nothing detected) | score | not refused: 100 % miss |
| D | NaN / +inf / -inf sample in a float WAV | val, inf | ``non-finite samples`` |
| D | a speaker overlapping itself (valid) | val | not refused; not counted as overlap |
| E | broken inference YAML (``--config``) | inf | ``not valid YAML`` with line:column |
| E | broken training YAML (``--config``) | diar_train | ``not valid YAML`` |

inf = diar_inference, val = validate_data, score = diar_score.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from diar_fixtures import cli_error

from espnet_prune.bin import diar_inference, diar_score, validate_data
from espnet_prune.infer import run
from espnet_prune.utils import rttm as rttm_module
from espnet_prune.utils.rttm import RttmSegment, write_rttm


def write_scp(root: Path, keys: list[str], data=None, subtype="PCM_16") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    data = 0.01 * np.ones(16000, dtype=np.float32) if data is None else data
    lines = []
    for i, key in enumerate(keys):
        wav = root / f"w{i}.wav"
        sf.write(wav, data, 16000, subtype=subtype)
        lines.append(f"{key} {wav}")
    scp = root / "wav.scp"
    scp.write_text("\n".join(lines) + "\n")
    return scp


def inference_argv(tmp_path: Path, scp: Path, *extra) -> list:
    return ["--model_file", tmp_path / "none.pth", "--train_config", tmp_path / "none.yaml",
            "--wav_scp", scp, "--output_dir", tmp_path / "out", "--no_progress", *extra]


# ---------------------------------------------------------------- A: speaker counts


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num_speakers", "0"], "num_speakers must be >= 1, got 0"),
        (["--num_speakers", "-3"], "num_speakers must be >= 1, got -3"),
        (["--max_speakers", "0"], "max_speakers must be >= 1, got 0"),
        (["--min_speakers", "5", "--max_speakers", "2"],
         "min_speakers=5 is larger than max_speakers=2"),
        (["--num_speakers", "4", "--max_speakers", "2"],
         "num_speakers=4 conflicts with max_speakers=2"),
        (["--num_speakers", "1", "--min_speakers", "2"],
         "num_speakers=1 conflicts with min_speakers=2"),
    ],
)
def test_bad_speaker_counts(tmp_path, capsys, extra, message):
    scp = write_scp(tmp_path / "data", ["a"])
    line = cli_error(capsys, diar_inference.main, inference_argv(tmp_path, scp, *extra))
    assert message in line
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_bad_speaker_counts_from_the_yaml(tmp_path, capsys):
    scp = write_scp(tmp_path / "data", ["a"])
    conf = tmp_path / "inference.yaml"
    conf.write_text("num_speakers: two\n")
    line = cli_error(capsys, diar_inference.main,
                     inference_argv(tmp_path, scp, "--config", conf))
    assert "num_speakers must be a whole number >= 1, got 'two'" in line
    conf.write_text("max_speakers: 3\n")  # the YAML bound and the CLI count conflict
    line = cli_error(capsys, diar_inference.main,
                     inference_argv(tmp_path, scp, "--config", conf, "--num_speakers", "4"))
    assert "num_speakers=4 conflicts with max_speakers=3" in line


def test_a_large_count_is_not_refused(tmp_path, capsys, monkeypatch):
    # 50 is a valid request (the clustering warns and gives fewer when there are fewer distinct
    # embeddings, see test/infer/test_clustering_counts.py): every check passes and the run
    # goes on to build the pipeline (stopped there, to keep the test light)
    from espnet_prune.errors import ConfigError

    seen = {}

    def stop(conf, overrides):
        seen.update(overrides)
        raise ConfigError("reached the pipeline")

    monkeypatch.setattr(run, "build_pipeline_parts", stop)
    scp = write_scp(tmp_path / "data", ["a"])
    line = cli_error(capsys, diar_inference.main,
                     inference_argv(tmp_path, scp, "--num_speakers", "50"))
    assert line == "error: reached the pipeline" and seen["num_speakers"] == 50


# ---------------------------------------------------------------- B: paths


@pytest.mark.parametrize(
    ("key", "problem"),
    [("../evil", "contains a path separator"), ("a/b", "contains a path separator"),
     ("a\\b", "contains a path separator"), ("..", "is a relative directory name"),
     (".", "is a relative directory name"), ("x\x1by", "contains a control character")],
)
def test_unsafe_recording_keys(tmp_path, capsys, key, problem):
    scp = write_scp(tmp_path / "data", ["ok", key])
    line = cli_error(capsys, diar_inference.main, inference_argv(tmp_path, scp))
    assert f"{scp}:2: key {key!r} {problem}" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.rttm").exists()
    line = cli_error(capsys, validate_data.main,
                     [tmp_path / "data", tmp_path / "formatted", "--require_rttm", "false"])
    assert f"{scp}:2: key {key!r} {problem}" in line
    assert not (tmp_path / "formatted").exists()


def test_output_dir_that_cannot_be_written(tmp_path, capsys):
    scp = write_scp(tmp_path / "data", ["a"])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = cli_error(capsys, diar_inference.main,
                     inference_argv(tmp_path, scp)[:-3] + ["--output_dir", blocker])
    assert f"{blocker}: output directory path is an existing file" in line
    line = cli_error(capsys, validate_data.main,
                     [tmp_path / "data", blocker, "--require_rttm", "false"])
    assert "is an existing file" in line
    # /sys refuses new directories even to root (a chmod'ed directory would not stop root)
    unwritable = Path("/sys/espnet_prune_test_out")
    line = cli_error(capsys, diar_inference.main,
                     inference_argv(tmp_path, scp)[:-3] + ["--output_dir", unwritable])
    assert f"{unwritable}: cannot create the output directory" in line


def test_score_json_that_cannot_be_written(tmp_path, capsys):
    ref = tmp_path / "ref.rttm"
    write_rttm(ref, [RttmSegment("r", 0.0, 5.0, "A")])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = cli_error(capsys, diar_score.main,
                     ["--ref", ref, "--hyp", ref, "--json", blocker / "s.json"])
    assert "s.json" in line and "not a directory" in line.lower()
    line = cli_error(capsys, diar_score.main, ["--ref", ref, "--hyp", ref, "--json", tmp_path])
    assert "is a directory" in line


class FakePipeline:
    """Stands in for DiarizationPipeline: one 1 s segment per recording."""

    config = SimpleNamespace(sample_rate=16000)

    def __call__(self, audio, rec):
        return [RttmSegment(rec, 0.0, 1.0, "spk0")]


def test_full_disk_leaves_no_final_rttm(tmp_path, capsys, monkeypatch):
    scp = write_scp(tmp_path / "data", ["a", "b"])
    wavs = {line.split()[0]: line.split()[1] for line in scp.read_text().splitlines()}
    out = tmp_path / "out"

    def format_or_fail(seg):
        if seg.recording == "b":  # the disk fills up while b's RTTM is written
            raise OSError(28, "No space left on device")
        return f"SPEAKER {seg.recording} 1 {seg.start:.3f} {seg.duration:.3f} <NA> <NA> x"

    monkeypatch.setattr(rttm_module, "format_rttm_line", format_or_fail)
    line = cli_error(capsys, lambda argv: run.diarize_recordings(
        FakePipeline(), wavs, out), [])
    assert "b.rttm: cannot write (No space left on device)" in line
    # a's file is complete; b's and the combined rttm do not exist (not 0-byte "no speech")
    assert (out / "rttm_per_recording" / "a.rttm").read_text().startswith("SPEAKER a")
    assert not (out / "rttm_per_recording" / "b.rttm").exists()
    assert not (out / "rttm").exists()
    assert sorted(p.name for p in out.rglob("*")) == ["a.rttm", "rttm_per_recording"]  # no temp


# ---------------------------------------------------------------- C: scoring


@pytest.fixture
def ref_file(tmp_path):
    path = tmp_path / "ref.rttm"
    write_rttm(path, [RttmSegment("r1", 1.0, 20.0, "A"), RttmSegment("r1", 25.0, 5.0, "B")])
    return path


def test_hypothesis_in_samples(tmp_path, capsys, ref_file):
    hyp = tmp_path / "hyp.rttm"  # ESPnet's sample-unit 'rttm' data type, read as seconds
    write_rttm(hyp, [RttmSegment("r1", 16000.0, 320000.0, "s0"),
                     RttmSegment("r1", 400000.0, 80000.0, "s1")])
    line = cli_error(capsys, diar_score.main, ["--ref", ref_file, "--hyp", hyp])
    assert f"{hyp}: recording 'r1' ends at 480000.000 s" in line
    assert "look like samples, not seconds" in line


def test_reference_in_samples(tmp_path, capsys, ref_file):
    ref = tmp_path / "ref_samples.rttm"
    write_rttm(ref, [RttmSegment("r1", 16000.0, 320000.0, "A")])
    uem = tmp_path / "uem"
    uem.write_text("r1 1 0 30\n")
    line = cli_error(capsys, diar_score.main,
                     ["--ref", ref, "--hyp", ref_file, "--uem", uem])
    assert f"{ref}: recording 'r1' ends at 336000.000 s, its UEM at 30.000 s" in line


def test_hypothesis_of_other_recordings(tmp_path, capsys, ref_file):
    hyp = tmp_path / "hyp.rttm"
    write_rttm(hyp, [RttmSegment("R1", 1.0, 20.0, "s0"), RttmSegment("x2", 0.0, 3.0, "s0")])
    line = cli_error(capsys, diar_score.main, ["--ref", ref_file, "--hyp", hyp])
    assert f"{hyp}: none of its 2 recording(s) (R1, x2) is in {ref_file} (r1)" in line


def test_empty_hypothesis_is_still_scored(tmp_path, capsys, ref_file):
    hyp = tmp_path / "hyp.rttm"
    hyp.write_text("")
    out = tmp_path / "s.json"
    assert diar_score.main(["--ref", str(ref_file), "--hyp", str(hyp), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["overall"]["miss"] == 1.0


# ---------------------------------------------------------------- D: audio and data dirs


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, capsys, bad):
    data = 0.01 * np.ones(3 * 16000, dtype=np.float32)
    data[40000] = bad  # at 2.5 s
    scp = write_scp(tmp_path / "data", ["a"], data=data, subtype="FLOAT")
    wav = tmp_path / "data" / "w0.wav"
    line = cli_error(capsys, validate_data.main,
                     [tmp_path / "data", tmp_path / "formatted", "--require_rttm", "false"])
    assert f"{wav}: audio has non-finite samples (NaN or inf), the first at 2.500 s" in line
    assert not (tmp_path / "formatted").exists()
    line = cli_error(capsys, diar_inference.main, inference_argv(tmp_path, scp))
    assert f"{wav}: audio has non-finite samples" in line
    assert not (tmp_path / "out").exists()


def test_non_finite_scan_is_streamed(tmp_path, monkeypatch):
    from espnet_prune.utils import audio

    data = 0.01 * np.ones(100_000, dtype=np.float32)
    data[-1] = np.nan  # in the last block only
    sf.write(tmp_path / "a.wav", data, 16000, subtype="FLOAT")
    reads = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    with pytest.raises(audio.DataError, match="sample 99999"):
        audio.check_finite(tmp_path / "a.wav", block=30_000)
    assert reads == [30_000] * 4  # four blocks, never the whole file
    sf.write(tmp_path / "b.wav", data, 16000, subtype="PCM_16")  # cannot hold NaN: not read
    reads.clear()
    audio.check_finite(tmp_path / "b.wav")
    assert reads == []


def test_self_overlap_is_not_overlap(tmp_path, capsys):
    from diar_fixtures import make_diar_data_dir

    # spk0 has two overlapping turns (0-3 s, 2-4 s): one speaker, no overlap; then spk0 and
    # spk1 really overlap 4.5-5 s
    data = make_diar_data_dir(tmp_path / "data", {
        "rec1": [(0.0, 3.0, 0), (2.0, 4.0, 0), (4.5, 5.5, 0), (4.5, 5.0, 1)],
    })
    assert validate_data.main([str(data), str(tmp_path / "formatted")]) == 0
    summary = json.loads((tmp_path / "formatted" / "summary.json").read_text())
    assert summary["overlap_fraction_of_speech"] == pytest.approx(0.5 / 5.0, abs=1e-4)


# ---------------------------------------------------------------- E: broken YAML


def test_broken_inference_yaml(tmp_path, capsys):
    scp = write_scp(tmp_path / "data", ["a"])
    conf = tmp_path / "inference.yaml"
    conf.write_text("window: 8.0\nstep: [4.0\n")
    line = cli_error(capsys, diar_inference.main, inference_argv(tmp_path, scp, "--config", conf))
    assert f"{conf}:" in line and "not valid YAML" in line


def test_broken_training_yaml(tmp_path, capsys):
    from espnet_prune.bin import diar_train

    conf = tmp_path / "train.yaml"
    conf.write_text("frontend: fbank\nencoder_conf: {output_size: 32\n")
    line = cli_error(capsys, diar_train.main, ["--config", conf, "--output_dir", tmp_path / "exp"])
    assert "not valid YAML" in line
