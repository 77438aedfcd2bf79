"""Hostile input, second round: the wrong ONNX model, truncated audio, every value of the inference
config, scores that measure nothing, and the tracebacks of ``diar_plda`` / ``diar_export``.

As in ``test_bad_input_data.py``, every CLI case runs ``run_main(<cli>.main, argv)`` in-process
and asserts exit status 2 with one ``error: ...`` line that names the file and the problem; a
few run as real subprocesses. Before these checks, each case below was exit 0 with wrong output
or a traceback (see the report of the change for which).

| class | input | CLI | the one line contains |
|---|---|---|---|
| F | teacher's .onnx + the pruned model's / an fbank config | inf-o | ``exported from another`` |
| F | .onnx metadata powerset: other classes than the graph's output | inf-o | ``has shape`` |
| F | .onnx metadata num_classes not its powerset's | inf-o | ``num_classes`` |
| F | .onnx metadata frame geometry not the graph's (first batch) | segmenter | ``promises`` |
| F | .onnx without the fingerprint (older export) | inf-o | ``without the metadata`` |
| G | WAV whose header promises 30 s, data cut at 12 s | val, inf, read | ``truncated`` |
| G | FLAC cut to a third | read | ``truncated or corrupt`` |
| H | each inference field: wrong type, NaN, ±inf, <0, 0, huge (generated) | inf | ``FILE: KEY`` |
| H | window of 10^6 s; batch size over the memory budget | inf | ``GiB budget`` |
| H | clustering / embedding options out of range, unknown keys | inf | ``clustering.KEY`` |
| I | collar wider than the recording | score | ``leaves no reference`` |
| I | NaN / negative / out-of-range rate in a score.json | results | ``overall.der`` ... |
| J | NaN embeddings; --segment 0; --max_segments_per_speaker 0 | plda | the option / ``finite`` |
| J | broken --embedding_conf; a directory or unwritable --output | plda | the option / path |
| J | disk full while the .onnx is written | export | ``model.onnx: cannot write`` |
| J | UTF-8 byte-order mark at the start of wav.scp / rttm / uem | read_scp, val | dropped |
| K | diar_bench: NaN window, step > window, 0 batch, negative duration | bench | the option |
| K | validate_data --sample_rate -5 | val | ``--sample_rate`` |

inf = diar_inference (inf-o: ``--backend onnxruntime``), val = validate_data, score =
diar_score, results = make_results, plda = diar_plda, export = diar_export, read =
``utils.audio.read_audio`` (what training reads), segmenter = ``infer.export.OnnxSegmenter``,
bench = diar_bench.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from diar_fixtures import cli_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from espnet_prune.bin import diar_inference, diar_plda, diar_score, make_results, validate_data
from espnet_prune.errors import CheckpointError, DataError
from espnet_prune.infer.pipeline import InferenceConfig
from espnet_prune.utils.rttm import RttmSegment, write_rttm

RATE = 16000


def write_scp(root: Path, seconds: float = 1.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    wav = root / "a.wav"
    sf.write(wav, 0.01 * np.ones(int(seconds * RATE), dtype=np.float32), RATE, subtype="PCM_16")
    scp = root / "wav.scp"
    scp.write_text(f"a {wav}\n")
    return scp


def inference_argv(tmp_path: Path, scp: Path, *extra) -> list:
    return ["--model_file", tmp_path / "none.pth", "--train_config", tmp_path / "none.yaml",
            "--wav_scp", scp, "--output_dir", tmp_path / "out", "--no_progress", *extra]


# ---------------------------------------------------------------- F: the ONNX model's identity

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def tiny_conf(kind: str) -> dict:
    """The training config (model keys) of the tiny pruned / unpruned model of the benchmark."""
    from espnet_prune.measure.bench import PRESETS, wavlm_preset

    (unpruned, pruned), encoder_conf = PRESETS["tiny"]
    name = pruned if kind == "pruned" else unpruned
    return {"frontend": "wavlm_prunable",
            "frontend_conf": {"config": wavlm_preset(name).to_dict()},
            "encoder": "conformer", "encoder_conf": dict(encoder_conf)}


@pytest.fixture(scope="module")
def teacher_onnx(tmp_path_factory):
    """The tiny unpruned ("teacher") model exported with its config; (path, config file)."""
    import torch

    from espnet_prune.diar.build import build_diarization_model
    from espnet_prune.infer.export import export_onnx

    folder = tmp_path_factory.mktemp("teacher")
    conf = tiny_conf("unpruned")
    torch.manual_seed(0)
    model = build_diarization_model(conf).eval()
    (folder / "config.yaml").write_text(yaml.safe_dump(conf))
    return export_onnx(model, folder / "teacher.onnx", train_conf=conf), folder / "config.yaml"


def with_metadata(source: Path, target: Path, **changes) -> Path:
    proto = onnx.load(str(source))
    for entry in proto.metadata_props:
        key = entry.key.removeprefix("espnet_prune.")
        if key in changes:
            entry.value = str(changes[key])
    kept = [p for p in proto.metadata_props if p.key.removeprefix("espnet_prune.") not in
            changes or changes[p.key.removeprefix("espnet_prune.")] is not None]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(target))
    return target


def test_another_models_onnx_is_refused_with_this_config(teacher_onnx, tmp_path, capsys):
    path, teacher_config = teacher_onnx
    scp = write_scp(tmp_path / "data")
    pruned_config = tmp_path / "pruned.yaml"
    pruned_config.write_text(yaml.safe_dump(tiny_conf("pruned")))
    fbank_config = tmp_path / "fbank.yaml"
    fbank_config.write_text(yaml.safe_dump({"frontend": "wavlm_prunable", "frontend_conf": {
        "config": tiny_conf("unpruned")["frontend_conf"]["config"]}, "encoder": "conformer",
        "encoder_conf": {"output_size": 64}}))
    for config in (pruned_config, fbank_config):
        argv = ["--backend", "onnxruntime", "--model_file", path, "--train_config", config,
                "--wav_scp", scp, "--output_dir", tmp_path / "out", "--no_progress"]
        line = cli_error(capsys, diar_inference.main, argv)
        assert f"{path}: exported from another model than {config}" in line
    # its own config passes the check (the fingerprint of the keys that define the model)
    from espnet_prune.infer.export import OnnxSegmenter, check_train_config

    check_train_config(OnnxSegmenter(path), teacher_config)


def test_graph_without_the_powersets_classes_is_refused(teacher_onnx, tmp_path, capsys):
    path, _ = teacher_onnx
    scp = write_scp(tmp_path / "data")
    # metadata of a 3-speaker powerset (7 classes) on a graph with 11 output classes
    liar = with_metadata(path, tmp_path / "liar.onnx", max_speakers_per_chunk=3, num_classes=7)
    argv = ["--backend", "onnxruntime", "--model_file", liar, "--wav_scp", scp,
            "--output_dir", tmp_path / "out", "--no_progress"]
    line = cli_error(capsys, diar_inference.main, argv)
    assert f"{liar}: ONNX output log_probs has shape" in line and "[batch, frames, 7]" in line
    # metadata whose own numbers disagree
    odd = with_metadata(path, tmp_path / "odd.onnx", num_classes=5)
    line = cli_error(capsys, diar_inference.main, [*argv[:3], odd, *argv[4:]])
    assert f"{odd}: ONNX metadata powerset" in line and "num_classes 5" in line


def test_graph_of_another_frame_geometry_fails_on_the_first_batch(teacher_onnx, tmp_path):
    from espnet_prune.infer.export import OnnxSegmenter

    path, _ = teacher_onnx
    liar = with_metadata(path, tmp_path / "shift.onnx", frame_shift=160, frame_length=400)
    segmenter = OnnxSegmenter(liar, num_threads=1)
    speech = 0.1 * np.random.default_rng(0).standard_normal((2, 2 * RATE)).astype(np.float32)
    with pytest.raises(CheckpointError, match=r"shift.onnx: ONNX output log_probs has shape "
                       r"\(2, 99, 11\) .* promises \(2, 198, 11\)"):
        segmenter.segmentation(speech, np.array([2 * RATE, RATE], dtype=np.int64))


def test_onnx_without_fingerprint_is_refused(teacher_onnx, tmp_path, capsys):
    path, _ = teacher_onnx
    old = with_metadata(path, tmp_path / "old.onnx", weights_sha256=None, config_sha256=None)
    scp = write_scp(tmp_path / "data")
    argv = ["--backend", "onnxruntime", "--model_file", old, "--wav_scp", scp,
            "--output_dir", tmp_path / "out", "--no_progress"]
    line = cli_error(capsys, diar_inference.main, argv)
    assert "old.onnx: ONNX model without the metadata ['weights_sha256', 'config_sha256']" in line


def test_fingerprint_is_of_the_weights(teacher_onnx):
    """Same config, other weights: another weights fingerprint (the config's is the same)."""
    import torch

    from espnet_prune.diar.build import build_diarization_model
    from espnet_prune.infer.export import OnnxSegmenter, model_metadata

    path, _ = teacher_onnx
    stored = OnnxSegmenter(path).metadata
    torch.manual_seed(1)
    other = model_metadata(build_diarization_model(tiny_conf("unpruned")),
                           tiny_conf("unpruned"))
    assert other["espnet_prune.config_sha256"] == stored["config_sha256"]
    assert other["espnet_prune.weights_sha256"] != stored["weights_sha256"]
    assert len(stored["weights_sha256"]) == 64


def test_disk_full_during_export_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    from espnet_prune.bin import diar_export
    from espnet_prune.diar.build import build_diarization_model

    conf = tiny_conf("pruned")
    torch.manual_seed(0)
    model = build_diarization_model(conf)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(conf))
    torch.save(model.state_dict(), tmp_path / "model.pth")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx, "save", full)
    output = tmp_path / "out" / "model.onnx"
    line = cli_error(capsys, diar_export.main, [
        "--model_file", tmp_path / "model.pth", "--train_config", tmp_path / "config.yaml",
        "--output", output])
    assert f"{output}: cannot write (No space left on device)" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no temp, no final file


# ---------------------------------------------------------------- G: truncated audio


def truncated_wav(path: Path, promised: float = 30.0, kept: float = 12.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.01 * np.ones(int(promised * RATE), dtype=np.float32), RATE,
             subtype="PCM_16")
    with open(path, "r+b") as fh:
        fh.truncate(44 + int(kept * RATE) * 2)
    assert sf.info(str(path)).frames == kept * RATE  # libsndfile reads it as 12 s, no word
    return path


def test_truncated_wav_is_refused_by_validation_and_inference(tmp_path, capsys):
    wav = truncated_wav(tmp_path / "data" / "a.wav")
    (tmp_path / "data" / "wav.scp").write_text(f"a {wav}\n")
    line = cli_error(capsys, validate_data.main, [tmp_path / "data", tmp_path / "formatted",
                                                   "--require_rttm", "false"])
    assert f"{wav}: audio is truncated: its header declares 30.000 s" in line
    assert "holds 12.000 s" in line
    line = cli_error(capsys, diar_inference.main,
                     inference_argv(tmp_path, tmp_path / "data" / "wav.scp"))
    assert f"{wav}: audio is truncated" in line


def test_truncated_audio_is_refused_where_training_reads_it(tmp_path):
    from espnet_prune.utils.audio import read_audio

    wav = truncated_wav(tmp_path / "a.wav")
    with pytest.raises(DataError, match="a.wav: audio is truncated"):
        read_audio(wav, start=0.0, end=1.0)
    flac = tmp_path / "b.flac"
    sf.write(flac, 0.01 * np.ones(30 * RATE, dtype=np.float32), RATE)
    size = flac.stat().st_size
    with open(flac, "r+b") as fh:
        fh.truncate(size // 3)
    with pytest.raises(DataError, match="b.flac: audio is truncated or corrupt"):
        read_audio(flac, start=0.0, end=1.0)


def test_complete_files_pass(tmp_path):
    """Odd sample counts (a pad byte after 24-bit data), WAVE_FORMAT_EXTENSIBLE, FLAC."""
    from espnet_prune.utils.audio import check_audio

    cases = [("a.wav", "WAV", "PCM_24"), ("b.wav", "WAVEX", "FLOAT"), ("c.flac", "FLAC", None)]
    for name, major, subtype in cases:
        sf.write(tmp_path / name, 0.01 * np.ones(RATE + 1, dtype=np.float32), RATE,
                 format=major, subtype=subtype)
        assert check_audio(tmp_path / name).num_samples == RATE + 1
    # a WAV with a chunk after the data (LIST metadata) is complete too
    with open(tmp_path / "a.wav", "ab") as fh:
        fh.write(b"LIST\x04\x00\x00\x00INFO")
    assert check_audio(tmp_path / "a.wav").num_samples == RATE + 1


# ---------------------------------------------------------------- H: every inference value

# Which kinds of value are invalid for each field, stated here independently of the schema
# (the test fails when InferenceConfig gains a field that is not listed).
ALL = ("wrong_type", "nan", "inf", "-inf", "negative", "zero", "huge")
INVALID = {
    "window": ALL,
    "step": ALL,
    "step_ratio": ALL,
    "batch_size": ALL,
    "forward_batch_size": ("wrong_type", "nan", "inf", "-inf", "negative", "zero"),
    "median_filter": ("wrong_type", "nan", "inf", "-inf", "negative", "huge"),
    "min_clean_fraction": ("wrong_type", "nan", "inf", "-inf", "negative", "huge"),
    "min_duration_off": ("wrong_type", "nan", "inf", "-inf", "negative"),
    "num_speakers": ("wrong_type", "nan", "inf", "-inf", "negative", "zero"),
    "min_speakers": ("wrong_type", "nan", "inf", "-inf", "negative", "zero"),
    "max_speakers": ("wrong_type", "nan", "inf", "-inf", "negative", "zero"),
    "sample_rate": ALL,
    "max_cluster_embeddings": ("wrong_type", "nan", "inf", "-inf", "negative", "huge"),
    "silence_floor_db": ("wrong_type", "nan", "inf", "-inf", "huge"),
    # a word and a flag: every number is of the wrong type
    "frame_times": ("nan", "inf", "-inf", "negative", "zero", "huge"),
    "pad_last_window": ("nan", "inf", "-inf", "negative", "zero", "huge"),
}
INT_FIELDS = {"batch_size", "forward_batch_size", "median_filter", "num_speakers",
              "min_speakers", "max_speakers", "sample_rate", "max_cluster_embeddings"}


def test_every_field_has_a_case():
    assert set(INVALID) == {f.name for f in dataclasses.fields(InferenceConfig)}


def invalid_value(field: str, kind: str) -> st.SearchStrategy:
    whole = field in INT_FIELDS
    if kind == "wrong_type":
        options = [st.text(max_size=8), st.booleans(),
                   st.lists(st.integers(1, 9), min_size=1, max_size=3),
                   st.dictionaries(st.sampled_from("ab"), st.integers(), min_size=1)]
        if whole:  # a fraction where a whole number is needed
            options.append(st.floats(0.01, 1e6).filter(lambda v: not float(v).is_integer()))
        return st.one_of(options)
    if kind in ("nan", "inf", "-inf"):
        return st.just(float(kind))
    if kind == "zero":
        return st.just(0) if whole else st.sampled_from([0.0, -0.0, 0])
    if kind == "negative":
        return (st.integers(-10**12, -1) if whole
                else st.floats(-1e300, -1e-9, allow_nan=False, allow_infinity=False))
    # huge
    return (st.integers(10**7, 10**18) if whole
            else st.floats(1e4, 1e300, allow_nan=False, allow_infinity=False))


CASES = st.sampled_from(sorted(INVALID)).flatmap(
    lambda field: st.tuples(st.just(field), st.sampled_from(INVALID[field])).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]),
                               invalid_value(pair[0], pair[1]))))


@pytest.fixture(scope="module")
def small_scp(tmp_path_factory):
    return write_scp(tmp_path_factory.mktemp("scp"))


@settings(max_examples=400, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_every_invalid_inference_value_is_one_line(case, small_scp, tmp_path_factory, capsys):
    """Generated invalid values (derandomized: the same 400 cases on every run) for every field:
    exit status 2 and one line naming the config file and the key, before any model loads."""
    field, kind, value = case
    folder = tmp_path_factory.mktemp("case")
    conf = folder / "inference.yaml"
    conf.write_text(yaml.safe_dump({field: value}))
    line = cli_error(capsys, diar_inference.main,
                     inference_argv(folder, small_scp, "--config", conf))
    assert line.startswith(f"error: {conf}: "), (case, line)
    assert field in line, (case, line)
    assert not (folder / "out").exists()


@pytest.mark.parametrize(("conf", "message"), [
    ({"window": 1e6}, "window must be a finite number > 0 and <= 3600"),
    ({"window": 3600.0}, "window 3600 s with batch_size 16"),
    ({"window": 200.0}, "GiB budget"),
    ({"batch_size": 10**9}, "batch_size 1000000000"),
    ({"step": 9.0}, "step must be <= window (8 s)"),
    ({"median_filter": -3}, "median_filter must be a whole number >= 0"),
    ({"min_clean_fraction": 5.0}, "min_clean_fraction must be a finite number >= 0 and <= 1"),
    ({"silence_floor_db": math.nan}, "silence_floor_db must be a finite number <= 0"),
    ({"window": "8 s"}, "window must be a finite number > 0 and <= 3600, got '8 s'"),
    ({"clustering": {"name": "ahc", "threshold": 3.0}}, "clustering.threshold must be"),
    ({"clustering": {"name": "vbx", "fa": -1.0, "plda": "p.npz"}}, "clustering.fa must be"),
    ({"clustering": {"name": "ahc", "treshold": 0.5}}, "unknown option(s) clustering.treshold"),
    ({"clustering": {"name": "kmeans"}}, "clustering.name must be one of 'ahc', 'vbx'"),
    ({"embedding": {"name": "resemblyzer", "conf": {"max_batch": 0}}},
     "embedding.conf.max_batch must be a whole number > 0"),
    ({"embedding": {"name": "wespeaker_resnet34", "conf": {"cmn_seconds": math.inf,
                                                           "checkpoint": "x"}}},
     "embedding.conf.cmn_seconds must be a finite number"),
    ({"windw": 8.0}, "unknown option(s) windw"),
])
def test_named_cases(tmp_path, capsys, conf, message):
    scp = write_scp(tmp_path / "data")
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(conf))
    line = cli_error(capsys, diar_inference.main, inference_argv(tmp_path, scp, "--config", path))
    assert line.startswith(f"error: {path}: ") and message in line, line


def test_valid_values_pass_the_schema():
    """The defaults, nulls where allowed, and the edges that are valid."""
    from espnet_prune.infer.config_schema import check_inference_config

    defaults = {f.name: f.default for f in dataclasses.fields(InferenceConfig)}
    assert check_inference_config(defaults, "x.yaml") == defaults
    edges = {"median_filter": 0, "min_clean_fraction": 1.0, "min_duration_off": 0.0,
             "silence_floor_db": None, "step": None, "forward_batch_size": None,
             "max_cluster_embeddings": 0, "num_speakers": 50, "window": 16.0, "step_ratio": 1.0,
             "clustering": {"name": "vbx", "plda": "p.npz", "threshold": 0.6}}
    assert check_inference_config(edges, "x.yaml")["window"] == 16.0


@pytest.mark.parametrize("conf", ["window: .nan\n", "median_filter: -3\n", "window: eight\n"])
def test_subprocess_exit_status_and_one_line(tmp_path, conf):
    """The real command line: exit status 2 and exactly one stderr line."""
    scp = write_scp(tmp_path / "data")
    path = tmp_path / "inference.yaml"
    path.write_text(conf)
    argv = [str(a) for a in inference_argv(tmp_path, scp, "--config", path)]
    done = subprocess.run([sys.executable, "-m", "espnet_prune.bin.diar_inference", *argv],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), done.stderr
    assert conf.split(":")[0] in lines[0]


# ---------------------------------------------------------------- I: scores


def test_collar_that_leaves_nothing_scored(tmp_path, capsys):
    ref, hyp = tmp_path / "ref.rttm", tmp_path / "hyp.rttm"
    write_rttm(ref, [RttmSegment("r1", 1.0, 2.0, "A"), RttmSegment("r1", 2.5, 1.0, "B")])
    write_rttm(hyp, [RttmSegment("r1", 5.0, 2.0, "x")])  # all wrong
    line = cli_error(capsys, diar_score.main, ["--ref", ref, "--hyp", hyp, "--collar", "60"])
    assert "collar 60 s leaves no reference speech to score in r1" in line
    # a collar that leaves some speech is scored (and the wrong hypothesis is not 0 %)
    capsys.readouterr()
    scores = diar_score.main(["--ref", str(ref), "--hyp", str(hyp), "--collar", "0.5"])
    assert scores == 0


@pytest.mark.parametrize(("overall", "message"), [
    ({"der": math.nan, "jer": 0.2}, "overall.der must be a finite number >= 0, got nan"),
    ({"der": -0.1, "jer": 0.2}, "overall.der must be a finite number >= 0, got -0.1"),
    ({"der": 0.1, "jer": 1.5}, "overall.jer must be a finite number >= 0 and <= 1"),
    ({"der": 0.1, "miss": math.inf}, "overall.miss must be"),
])
def test_make_results_refuses_bad_scores(tmp_path, capsys, overall, message):
    score = tmp_path / "exp" / "fbank" / "decode" / "test" / "score.json"
    score.parent.mkdir(parents=True)
    score.write_text(json.dumps({"overall": overall}))  # NaN/Infinity: Python's json writes them
    line = cli_error(capsys, make_results.main, [
        "--expdir", tmp_path / "exp", "--models", "fbank", "--test_sets", "test",
        "--output_md", tmp_path / "RESULTS.md"])
    assert f"{score}: {message}" in line
    assert not (tmp_path / "RESULTS.md").exists()


# ---------------------------------------------------------------- J: diar_plda, BOM


def embeddings_file(path: Path, vectors=None) -> Path:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((40, 8)) if vectors is None else vectors
    np.savez(path, embeddings=vectors, speakers=np.array([f"s{i % 4}" for i in range(40)]))
    return path


@pytest.mark.parametrize(("extra", "message"), [
    (["--segment", "0"], "--segment must be a finite number > 0, got 0.0"),
    (["--segment", "nan"], "--segment must be a finite number > 0, got nan"),
    (["--min_segment", "-1"], "--min_segment must be a finite number >= 0"),
    (["--max_segments_per_speaker", "0"], "--max_segments_per_speaker must be a whole number"),
    (["--lda_dim", "0"], "--lda_dim must be a whole number >= 1"),
])
def test_plda_options(tmp_path, capsys, extra, message):
    source = embeddings_file(tmp_path / "emb.npz")
    line = cli_error(capsys, diar_plda.main,
                     ["--embeddings", source, "--output", tmp_path / "plda.npz", *extra])
    assert message in line
    assert not (tmp_path / "plda.npz").exists()


def test_plda_nan_embeddings_and_outputs(tmp_path, capsys):
    vectors = np.random.default_rng(0).standard_normal((40, 8))
    vectors[7, 3] = np.nan
    source = embeddings_file(tmp_path / "nan.npz", vectors)
    line = cli_error(capsys, diar_plda.main, ["--embeddings", source, "--output",
                                              tmp_path / "plda.npz"])
    assert f"{source}: PLDA estimation needs finite embeddings: embedding 7" in line
    good = embeddings_file(tmp_path / "emb.npz")
    for output, words in [(tmp_path, "output path is a directory"),
                          ("/proc/plda.npz", "/proc/plda.npz")]:
        line = cli_error(capsys, diar_plda.main, ["--embeddings", good, "--output", output])
        assert words in line
    line = cli_error(capsys, diar_plda.main, ["--data_dir", tmp_path, "--output",
                                              tmp_path / "p.npz", "--embedding_conf", "{a: [1"])
    assert "--embedding_conf:" in line and "not valid YAML" in line
    # the output is written under exactly its name (NumPy would add .npz to "plda")
    assert diar_plda.main(["--embeddings", str(good), "--output", str(tmp_path / "plda")]) == 0
    assert (tmp_path / "plda").is_file() and not (tmp_path / "plda.npz").exists()


def test_byte_order_mark_is_dropped(tmp_path, tiny_data_dir):
    from espnet_prune.utils.datadir import read_scp, read_uem, validate_data_dir
    from espnet_prune.utils.rttm import read_rttm

    for name in ("wav.scp", "rttm", "uem"):
        path = tiny_data_dir / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert sorted(read_scp(tiny_data_dir / "wav.scp")) == ["rec1", "rec2"]
    assert sorted(read_rttm(tiny_data_dir / "rttm")) == ["rec1", "rec2"]
    assert sorted(read_uem(tiny_data_dir / "uem")) == ["rec1", "rec2"]
    assert validate_data_dir(tiny_data_dir, require_rttm=True).recordings == ["rec1", "rec2"]


def test_export_without_config_fingerprint_checks_geometry(teacher_onnx, tmp_path):
    """A file exported without its config (``export_onnx`` from Python) has an empty config
    fingerprint: a given config is then checked on frame geometry and powerset."""
    from espnet_prune.errors import ConfigError
    from espnet_prune.infer.export import OnnxSegmenter, check_train_config

    path, _ = teacher_onnx
    bare = with_metadata(path, tmp_path / "bare.onnx", config_sha256="")
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**tiny_conf("pruned"),
                                     "model_conf": {"max_speakers_per_chunk": 3}}))
    with pytest.raises(ConfigError, match=r"bare.onnx: powerset \(4, 2\) differs from .*other"):
        check_train_config(OnnxSegmenter(bare), other)


@pytest.mark.parametrize(("argv", "message"), [
    (["--window", "nan"], "diar_bench: --window must be a finite number > 0"),
    (["--step", "20"], "diar_bench: --step must be <= window (8 s)"),
    (["--memory_step", "0"], "diar_bench: --memory_step must be a finite number > 0"),
    (["--duration", "-1"], "diar_bench: --duration must be a finite number >= 1"),
    (["--batch_size", "0"], "diar_bench: --batch_size must be a whole number >= 1"),
    (["--threads", "0"], "diar_bench: --threads must be a whole number >= 1"),
])
def test_benchmark_options_before_any_work(capsys, argv, message):
    from espnet_prune.bin import diar_bench

    assert message in cli_error(capsys, diar_bench.main, argv)


def test_validate_data_sample_rate(tmp_path, capsys):
    line = cli_error(capsys, validate_data.main, [tmp_path, tmp_path / "out", "--sample_rate",
                                                   "-5"])
    assert "validate_data: --sample_rate must be a whole number >= 1" in line
