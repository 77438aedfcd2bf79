"""Broken checkpoints, configs and output paths give one ``error:`` line (exit 2), no traceback.

Every case runs the CLI in-process through ``run_main(module.main, argv)``.

| CLI / helper | bad input | one-line message says |
|-|-|-|
| wavlm_convert | config.json not valid JSON | ``config.json:L:C: not valid JSON`` |
| wavlm_convert | config.json without ``num_hidden_layers`` | ``missing key 'num_hidden_layers'`` |
| wavlm_convert | config.json is a JSON list | ``expected a JSON object`` |
| wavlm_convert | --input is already an espnet_prune WavLM | ``nothing to convert`` |
| wavlm_convert | --output is an existing directory | ``output path is a directory`` |
| wavlm_convert | --output under a regular file | ``is not a directory`` |
| wavlm_convert | --output in a read-only location (/proc) | the output path |
| wavlm_prune | --output is a directory | ``output path is a directory`` |
| wavlm_prune | --input is a 0-byte .pt | ``file is empty`` |
| wavlm_prune | --input is a truncated .pt | ``truncated or corrupted`` |
| wavlm_prune | --input is a text file | ``cannot read`` |
| wavlm_bench | --seconds 0 / -1 / nan, --runs 0 | the option and its range |
| diar_inference | --train_config is broken YAML | ``config.yaml:L:C: ... not valid YAML`` |
| diar_inference | --model_file is a bare WavLM checkpoint | ``bare WavLM checkpoint`` |
| diar_inference | --model_file is 0 bytes | ``file is empty`` |
| diar_inference | --model_file is ESPnet's resume file layout | ``not a model state dict`` |
| diar_inference | --model_file of another architecture | the key and both shapes |
| diar_prune | --teacher_config is broken YAML | ``not valid YAML`` |
| diar_prune | --config is broken YAML | ``--config is not valid YAML`` |
| diar_prune | --teacher is a bare WavLM checkpoint | ``bare WavLM checkpoint`` |
| diar_prune | --teacher is an fbank model (its own config) | ``frontend is 'fbank'`` |
| diar_prune | --teacher is an fbank model, WavLM config | ``no 'frontend.wavlm.*' weights`` |
| diar_prune | --teacher with a different WavLM size | the key and both shapes |
| diar_prune | --export_dir / --output_dir is a regular file | ``is an existing file`` |
| diar_distill | --export_dir is a regular file | ``is an existing file`` |
| utils.io.atomic_path | failure inside the block | old file kept, no temp file |

The ``diar_prune --teacher`` cases used to pass silently (ESPnet loads with ``strict=False``: a
bare WavLM left the teacher at random weights) or die in a size-mismatch traceback."""

from __future__ import annotations

import json
import os
import types

import pytest
import torch
import yaml
from diar_fixtures import make_diar_data_dir

from espnet_prune.errors import ConfigError
from espnet_prune.utils.cli import run_main


def run_cli(module, argv, capsys) -> str:
    """Exit status 2 and exactly one ``error:`` line on stderr; returns that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(module.main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


# ------------------------------------------------------------------ WavLM CLIs (no espnet2)
HF_CONFIG = {"model_type": "wavlm", "num_hidden_layers": 2, "num_attention_heads": 4,
             "hidden_size": 48, "intermediate_size": 64, "conv_dim": [32, 32],
             "conv_kernel": [10, 3], "conv_stride": [5, 2], "num_conv_pos_embeddings": 16,
             "num_conv_pos_embedding_groups": 4}


@pytest.fixture
def masked_wavlm(tmp_path):
    from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

    model = WavLM(wavlm_config("tiny"))
    model.add_pruning_gates(("conv", "head", "interm"))
    path = tmp_path / "masked.pt"
    save_wavlm(model, path)
    return path


def test_convert_bad_config_json(tmp_path, capsys):
    from espnet_prune.bin import wavlm_convert

    hf = tmp_path / "hf"
    hf.mkdir()
    argv = ["--input", hf, "--output", tmp_path / "out.pt"]
    (hf / "config.json").write_text('{"model_type": "wavlm",\n "num_hidden_layers": 2,,}')
    line = run_cli(wavlm_convert, argv, capsys)
    assert f"{hf / 'config.json'}:2:" in line and "not valid JSON" in line
    (hf / "config.json").write_text(json.dumps(
        {k: v for k, v in HF_CONFIG.items() if k != "num_hidden_layers"}))
    line = run_cli(wavlm_convert, argv, capsys)
    assert "config.json" in line and "missing key 'num_hidden_layers'" in line
    (hf / "config.json").write_text("[1, 2]")
    assert "expected a JSON object" in run_cli(wavlm_convert, argv, capsys)
    assert not (tmp_path / "out.pt").exists()


def test_convert_output_paths(tmp_path, capsys, masked_wavlm):
    from espnet_prune.bin import wavlm_convert

    line = run_cli(wavlm_convert, ["--input", masked_wavlm, "--output", tmp_path / "o.pt"],
                   capsys)
    assert str(masked_wavlm) in line and "nothing to convert" in line
    s3prl = tmp_path / "s3prl.pt"
    torch.save({"cfg": {}, "model": {}}, s3prl)
    line = run_cli(wavlm_convert, ["--input", s3prl, "--output", tmp_path], capsys)
    assert f"error: {tmp_path}: output path is a directory" in line
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = run_cli(wavlm_convert, ["--input", s3prl, "--output", blocker / "o.pt"], capsys)
    assert str(blocker / "o.pt") in line and "not a directory" in line
    line = run_cli(wavlm_convert, ["--input", s3prl, "--output", "/proc/espnet_prune.pt"],
                   capsys)
    assert "/proc/espnet_prune.pt" in line


def test_prune_bad_input_and_output(tmp_path, capsys, masked_wavlm):
    from espnet_prune.bin import wavlm_prune

    line = run_cli(wavlm_prune, ["--input", masked_wavlm, "--output", tmp_path], capsys)
    assert f"error: {tmp_path}: output path is a directory" in line
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    line = run_cli(wavlm_prune, ["--input", empty, "--output", tmp_path / "o.pt"], capsys)
    assert f"{empty}: WavLM checkpoint file is empty" in line
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(masked_wavlm.read_bytes()[:5000])
    line = run_cli(wavlm_prune, ["--input", truncated, "--output", tmp_path / "o.pt"], capsys)
    assert f"{truncated}: WavLM checkpoint file is truncated or corrupted" in line
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    line = run_cli(wavlm_prune, ["--input", text, "--output", tmp_path / "o.pt"], capsys)
    assert f"{text}: cannot read WavLM checkpoint" in line
    assert not (tmp_path / "o.pt").exists()


@pytest.mark.parametrize("argv,option", [(["--seconds", "0"], "--seconds"),
                                          (["--seconds", "-1"], "--seconds"),
                                          (["--seconds", "nan"], "--seconds"),
                                          (["--runs", "0"], "--runs")])
def test_bench_bad_numbers(capsys, argv, option):
    from espnet_prune.bin import wavlm_bench

    line = run_cli(wavlm_bench, ["--preset", "tiny", *argv], capsys)
    assert line.startswith(f"error: {option} must be")


def test_atomic_path_keeps_old_file_and_leaves_no_temp(tmp_path):
    from espnet_prune.utils.io import atomic_path, atomic_torch_save

    target = tmp_path / "model.pt"
    atomic_torch_save({"w": torch.ones(2)}, target)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")  # an interrupted write
            raise KeyboardInterrupt
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
    with pytest.raises(ConfigError, match=f"{tmp_path / 'missing' / 'x.pt'}: output directory"):
        with atomic_path(tmp_path / "missing" / "x.pt"):
            pass
    with pytest.raises(ConfigError, match="output path is a directory"):
        with atomic_path(tmp_path):
            pass


# ------------------------------------------------------------------ ESPnet-based CLIs
ENCODER = {"output_size": 16, "attention_heads": 2, "linear_units": 32, "num_blocks": 1,
           "cnn_module_kernel": 3}
DATA_OPTS = ["--chunk_size", "2.0", "--chunk_shift", "2.0", "--batch_size", "2",
             "--num_workers", "0", "--progress_bar", "false", "--max_epoch", "1"]


def exp_dir(root, name, conf, task):
    """config.yaml + a state dict of an untrained model built by ``task`` from ``conf``."""
    given = root / f"{name}.yaml"
    given.write_text(yaml.safe_dump(conf))
    args = task.get_parser().parse_args(["--config", str(given)])
    torch.manual_seed(0)
    model = task.build_model(args)
    exp = root / name
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "model.pth")
    return exp


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from espnet_prune.tasks.diar import PowersetDiarizationTask
    from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

    root = tmp_path_factory.mktemp("bad_checkpoints")
    data = make_diar_data_dir(root / "data")
    wavlm = root / "wavlm.pt"
    save_wavlm(WavLM(wavlm_config("tiny")), wavlm)
    wavlm_mini = root / "wavlm_mini.pt"
    save_wavlm(WavLM(wavlm_config("mini")), wavlm_mini)
    task = PowersetDiarizationTask
    fbank = exp_dir(root, "fbank", {"frontend": "fbank", "frontend_conf": {"n_mels": 40},
                                    "encoder": "conformer", "encoder_conf": ENCODER}, task)
    teacher = exp_dir(root, "teacher", {"frontend": "wavlm_prunable",
                                        "frontend_conf": {"path": str(wavlm)},
                                        "encoder": "conformer", "encoder_conf": ENCODER}, task)
    other = exp_dir(root, "other", {"frontend": "wavlm_prunable",
                                    "frontend_conf": {"path": str(wavlm_mini)},
                                    "encoder": "conformer", "encoder_conf": ENCODER}, task)
    broken = root / "broken.yaml"
    broken.write_text("frontend: wavlm_prunable\nencoder_conf:\n  output_size: [16\n")
    return types.SimpleNamespace(root=root, data=data, wavlm=wavlm, fbank=fbank,
                                 teacher=teacher, other=other, broken=broken)


def data_argv(data):
    return ["--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound", *DATA_OPTS]


def inference_argv(env, tmp_path, model_file, train_config):
    return ["--model_file", model_file, "--train_config", train_config,
            "--wav_scp", env.data / "wav.scp", "--output_dir", tmp_path / "out"]


def test_inference_bad_model_files(env, tmp_path, capsys):
    from espnet_prune.bin import diar_inference

    line = run_cli(diar_inference, inference_argv(env, tmp_path, env.fbank / "model.pth",
                                                  env.broken), capsys)
    assert f"error: {env.broken}:4:" in line and "--train_config is not valid YAML" in line
    line = run_cli(diar_inference, inference_argv(env, tmp_path, env.wavlm,
                                                  env.teacher / "config.yaml"), capsys)
    assert f"{env.wavlm}: --model_file file is a bare WavLM checkpoint" in line
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    line = run_cli(diar_inference, inference_argv(env, tmp_path, empty,
                                                  env.fbank / "config.yaml"), capsys)
    assert f"{empty}: --model_file file is empty" in line
    resume = tmp_path / "checkpoint.pth"
    torch.save({"model": {}, "optimizers": [{}], "reporter": {}}, resume)
    line = run_cli(diar_inference, inference_argv(env, tmp_path, resume,
                                                  env.fbank / "config.yaml"), capsys)
    assert f"{resume}: --model_file file is not a model state dict" in line
    line = run_cli(diar_inference, inference_argv(env, tmp_path, env.other / "model.pth",
                                                  env.teacher / "config.yaml"), capsys)
    assert str(env.other / "model.pth") in line and "has shape" in line


def test_prune_teacher_kind_is_checked(env, tmp_path, capsys):
    from espnet_prune.bin import diar_prune

    common = [*data_argv(env.data), "--output_dir", tmp_path / "out"]
    config = env.teacher / "config.yaml"
    line = run_cli(diar_prune, [*common, "--teacher", env.teacher / "model.pth",
                                "--teacher_config", env.broken], capsys)
    assert f"{env.broken}:4:" in line and "--teacher_config is not valid YAML" in line
    line = run_cli(diar_prune, ["--config", env.broken, *common], capsys)
    assert f"{env.broken}:4:" in line and "--config is not valid YAML" in line
    line = run_cli(diar_prune, [*common, "--teacher", env.wavlm, "--teacher_config", config],
                   capsys)
    assert f"{env.wavlm}: --teacher file is a bare WavLM checkpoint" in line
    line = run_cli(diar_prune, [*common, "--teacher", env.fbank / "model.pth",
                                "--teacher_config", env.fbank / "config.yaml"], capsys)
    assert "the teacher's frontend is 'fbank'" in line
    line = run_cli(diar_prune, [*common, "--teacher", env.fbank / "model.pth",
                                "--teacher_config", config], capsys)
    assert f"{env.fbank / 'model.pth'}: --teacher has no 'frontend.wavlm.*' weights" in line
    line = run_cli(diar_prune, [*common, "--teacher", env.other / "model.pth",
                                "--teacher_config", config], capsys)
    assert str(env.other / "model.pth") in line and "has shape" in line
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    line = run_cli(diar_prune, [*common, "--teacher", env.teacher / "model.pth",
                                "--teacher_config", config, "--export_dir", blocker], capsys)
    assert f"error: {blocker}: output directory path is an existing file" in line
    line = run_cli(diar_prune, [*data_argv(env.data), "--output_dir", blocker,
                                "--teacher", env.teacher / "model.pth",
                                "--teacher_config", config], capsys)
    assert f"error: {blocker}: output directory path is an existing file" in line


def test_distill_export_dir_is_a_file(env, tmp_path, capsys):
    from espnet_prune.bin import diar_distill

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    line = run_cli(diar_distill, [*data_argv(env.data), "--output_dir", tmp_path / "out",
                                  "--teacher_wavlm", env.wavlm, "--student_wavlm", env.wavlm,
                                  "--export_dir", blocker], capsys)
    assert f"error: {blocker}: output directory path is an existing file" in line
