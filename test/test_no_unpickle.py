"""No checkpoint is ever unpickled in full (hostile and broken input).

A crafted pickle whose unpickling runs code (``__reduce__`` returning ``os.system`` or
``pathlib.Path.touch`` of a marker file), written with ``torch.save`` and with plain ``pickle``,
is handed to every entry point that reads a checkpoint, through its ``main(argv)`` under
``run_main`` semantics: each must exit with status 2 and a one-line ``error: ...`` naming the
file, and the marker must never appear.

| entry point                                   | file given                                   |
|-----------------------------------------------|----------------------------------------------|
| ``wavlm_convert --input FILE``                | the payload as an s3prl ``{cfg, model}`` file |
| ``wavlm_convert --input HF_DIR``              | payload as HF_DIR/pytorch_model.bin          |
| ``wavlm_prune --input``                       | payload                                      |
| ``wavlm_stats MODEL``                         | payload                                      |
| ``wavlm_bench --pruned``                      | payload                                      |
| ``diar_prune --teacher``                      | payload (valid WavLM ``--teacher_config``)   |
| ``diar_distill --teacher_wavlm/--student_wavlm`` | payload                                   |
| ``diar_inference --model_file``               | payload (valid ``--train_config``)           |
| ``diar_inference`` embedding ``checkpoint``   | payload as the WeSpeaker checkpoint          |
| ``diar_inference`` clustering ``plda``        | payload; an .npz of object arrays            |
| ``diar_train --init_param``                   | payload                                      |
| ``diar_train --resume true``                  | payload planted as OUT/checkpoint.pth        |

Plus: the payloads really do create the marker when unpickled in full (so the assertions can
fail), and a pyannote-style Lightning checkpoint (pickled pyannote objects) is read safely by
the WeSpeaker loader, with the pyannote objects as inert stand-ins.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import yaml
from diar_fixtures import make_diar_data_dir

from espnet_prune.utils.cli import run_main

PAYLOADS = ["torch_save-os_system", "pickle-path_touch", "torch_save-path_touch",
            "pickle-os_system"]


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def write_payload(path: pathlib.Path, kind: str, marker: pathlib.Path) -> pathlib.Path:
    writer, action = kind.split("-")
    evil = (_System if action == "os_system" else _Touch)(marker)
    # looks like every format the project reads: a state dict, an s3prl and a WavLM file
    obj = {"format": "espnet_prune.wavlm", "cfg": {}, "model": {}, "state_dict": evil,
           "weight": evil}
    path.parent.mkdir(parents=True, exist_ok=True)
    if writer == "torch_save":
        torch.save(obj, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f)
    return path


@pytest.fixture(params=PAYLOADS)
def payload(request, tmp_path):
    marker = tmp_path / "MARKER"
    path = write_payload(tmp_path / "evil" / "model.pth", request.param, marker)
    return path, marker


def run_cli(module, argv, capsys) -> str:
    """``run_main(module.main, argv)``: exit status 2 and one ``error:`` line; returns it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(module.main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-2000:]
    assert "Traceback" not in err
    return lines[0]


def assert_refused(line: str, path, marker):
    assert str(path) in line, line
    assert not marker.exists(), "the payload was unpickled"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_payload_runs_code_when_fully_unpickled(tmp_path, kind):
    """Sanity: the payloads are real (the assertions below could fail)."""
    marker = tmp_path / "MARKER"
    path = write_payload(tmp_path / "evil.pth", kind, marker)
    if kind.startswith("torch_save"):
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert marker.exists()


def test_wavlm_clis_refuse(payload, tmp_path, capsys):
    from espnet_prune.bin import wavlm_bench, wavlm_convert, wavlm_prune, wavlm_stats

    path, marker = payload
    out = tmp_path / "out.pt"
    line = run_cli(wavlm_convert, ["--input", path, "--output", out], capsys)
    assert_refused(line, path, marker)
    assert "refusing to unpickle" in line
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text(
        '{"model_type": "wavlm", "num_hidden_layers": 2, "num_attention_heads": 4, '
        '"hidden_size": 48, "intermediate_size": 64, "conv_dim": [32, 32], '
        '"conv_kernel": [10, 3], "conv_stride": [5, 2], "num_conv_pos_embeddings": 16, '
        '"num_conv_pos_embedding_groups": 4}')
    bin_path = write_payload(hf_dir / "pytorch_model.bin", "torch_save-os_system", marker)
    assert_refused(run_cli(wavlm_convert, ["--input", hf_dir, "--output", out], capsys),
                   bin_path, marker)
    assert_refused(run_cli(wavlm_prune, ["--input", path, "--output", out], capsys),
                   path, marker)
    assert_refused(run_cli(wavlm_stats, [path], capsys), path, marker)
    assert_refused(run_cli(wavlm_bench, ["--preset", "tiny", "--pruned", path, "--runs", "1",
                                         "--seconds", "0.1"], capsys), path, marker)
    assert not out.exists()


# ------------------------------------------------------------------ ESPnet-based entry points
TINY_FBANK = {
    "frontend": "fbank",
    "frontend_conf": {"n_mels": 40},
    "encoder": "conformer",
    "encoder_conf": {"output_size": 16, "attention_heads": 2, "linear_units": 32,
                     "num_blocks": 1, "cnn_module_kernel": 3},
}
DATA_OPTS = ["--chunk_size", "2.0", "--chunk_shift", "2.0", "--batch_size", "2",
             "--num_workers", "0", "--progress_bar", "false", "--max_epoch", "1"]


@pytest.fixture(scope="module")
def espnet_env(tmp_path_factory):
    """A data dir, a tiny fbank model exp (config.yaml + state dict), a WavLM teacher config,
    a WavLM file, a WeSpeaker state dict and a wav.scp (built once: imports espnet2)."""
    from espnet_prune.infer.wespeaker import WeSpeakerResNet34
    from espnet_prune.tasks.diar import PowersetDiarizationTask
    from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

    root = tmp_path_factory.mktemp("espnet_env")
    data = make_diar_data_dir(root / "data")
    given = root / "tiny.yaml"
    given.write_text(yaml.safe_dump(TINY_FBANK))
    args = PowersetDiarizationTask.get_parser().parse_args(["--config", str(given)])
    torch.manual_seed(0)
    model = PowersetDiarizationTask.build_model(args)
    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    wavlm = root / "wavlm.pt"
    save_wavlm(WavLM(wavlm_config("tiny")), wavlm)
    teacher_config = root / "teacher_config.yaml"
    teacher_config.write_text(yaml.safe_dump(dict(
        vars(args), frontend="wavlm_prunable", frontend_conf={"path": str(wavlm)})))
    wespeaker = root / "wespeaker.pt"
    torch.save(WeSpeakerResNet34().state_dict(), wespeaker)
    return types.SimpleNamespace(root=root, data=data, exp=exp, wavlm=wavlm,
                                 teacher_config=teacher_config, wespeaker=wespeaker,
                                 wav_scp=data / "wav.scp", fbank_config=given)


def data_argv(data):
    return ["--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound", *DATA_OPTS]


def inference_config(tmp_path, wespeaker, plda=None):
    conf = {"embedding": {"name": "wespeaker_resnet34", "conf": {"checkpoint": str(wespeaker)}}}
    if plda is not None:
        conf["clustering"] = {"name": "vbx", "plda": str(plda)}
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def test_espnet_model_files_refuse(payload, espnet_env, tmp_path, capsys):
    from espnet_prune.bin import diar_distill, diar_inference, diar_prune, diar_train

    path, marker = payload
    env = espnet_env
    out = tmp_path / "out"
    # diar_prune --teacher (the teacher config is a valid WavLM diarization config)
    line = run_cli(diar_prune, [*data_argv(env.data), "--teacher", path, "--teacher_config",
                                env.teacher_config, "--output_dir", out], capsys)
    assert_refused(line, path, marker)
    # diar_distill: teacher and student WavLM files
    line = run_cli(diar_distill, [*data_argv(env.data), "--teacher_wavlm", path,
                                  "--student_wavlm", env.wavlm, "--output_dir", out], capsys)
    assert_refused(line, path, marker)
    line = run_cli(diar_distill, [*data_argv(env.data), "--teacher_wavlm", env.wavlm,
                                  "--student_wavlm", path, "--output_dir", out], capsys)
    assert_refused(line, path, marker)
    # diar_inference --model_file
    conf = inference_config(tmp_path, env.wespeaker)
    line = run_cli(diar_inference, ["--model_file", path, "--train_config",
                                    env.exp / "config.yaml", "--wav_scp", env.wav_scp,
                                    "--output_dir", out, "--config", conf], capsys)
    assert_refused(line, path, marker)
    # diar_inference: the WeSpeaker checkpoint of the embedding conf
    conf = inference_config(tmp_path, path)
    line = run_cli(diar_inference, ["--model_file", env.exp / "valid.loss.ave.pth",
                                    "--train_config", env.exp / "config.yaml", "--wav_scp",
                                    env.wav_scp, "--output_dir", out, "--config", conf], capsys)
    assert_refused(line, path, marker)
    # diar_inference: the PLDA file of VBx clustering
    conf = inference_config(tmp_path, env.wespeaker, plda=path)
    line = run_cli(diar_inference, ["--model_file", env.exp / "valid.loss.ave.pth",
                                    "--train_config", env.exp / "config.yaml", "--wav_scp",
                                    env.wav_scp, "--output_dir", out, "--config", conf], capsys)
    assert_refused(line, path, marker)
    # diar_train --init_param (ESPnet's own loader would unpickle it in full)
    line = run_cli(diar_train, ["--config", env.fbank_config, *data_argv(env.data),
                                "--init_param", path, "--output_dir", out / "train"], capsys)
    assert_refused(line, path, marker)
    assert "refusing to unpickle" in line
    # diar_train --resume true with a planted resume file (ESPnet's trainer unpickles it)
    resumed = out / "resumed"
    resumed.mkdir(parents=True)
    (resumed / "checkpoint.pth").write_bytes(path.read_bytes())
    line = run_cli(diar_train, ["--config", env.fbank_config, *data_argv(env.data),
                                "--resume", "true", "--output_dir", resumed], capsys)
    assert_refused(line, resumed / "checkpoint.pth", marker)


def test_plda_npz_with_object_arrays_is_refused(espnet_env, tmp_path, capsys):
    from espnet_prune.bin import diar_inference
    from espnet_prune.infer.plda import KEYS

    marker = tmp_path / "MARKER"
    plda = tmp_path / "plda.npz"
    np.savez(plda, **{key: np.array([_System(marker)], dtype=object) for key in KEYS})
    env = espnet_env
    conf = inference_config(tmp_path, env.wespeaker, plda=plda)
    line = run_cli(diar_inference, ["--model_file", env.exp / "valid.loss.ave.pth",
                                    "--train_config", env.exp / "config.yaml", "--wav_scp",
                                    env.wav_scp, "--output_dir", tmp_path / "out",
                                    "--config", conf], capsys)
    assert_refused(line, plda, marker)
    assert "refusing to unpickle" in line


def test_init_param_still_loads_a_plain_state_dict(espnet_env, tmp_path):
    """The safe ``--init_param`` keeps ESPnet's semantics (path:src_key:dst_key)."""
    from espnet_prune.diar.model_file import load_pretrained_model, load_trained_model
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    env = espnet_env
    import espnet2.tasks.abs_task as abs_task

    assert abs_task.load_pretrained_model is load_pretrained_model  # installed by the hook
    source = load_trained_model(PowersetDiarizationTask, env.exp / "config.yaml",
                                env.exp / "valid.loss.ave.pth")
    target = PowersetDiarizationTask.build_model_from_file(env.exp / "config.yaml", None)[0]
    load_pretrained_model(f"{env.exp / 'valid.loss.ave.pth'}:encoder:encoder", target, False)
    for key, value in source.state_dict().items():
        if key.startswith("encoder."):
            assert torch.equal(value, target.state_dict()[key]), key
    assert not torch.equal(source.classifier.weight, target.classifier.weight)


def test_pyannote_lightning_checkpoint_is_read_without_pyannote_code(tmp_path):
    """pyannote's checkpoints pickle pyannote objects (task specifications, enums) and a
    TorchVersion: the WeSpeaker loader reads them as inert stand-ins, never importing or
    calling pyannote; the generic reader refuses them with a conversion hint."""
    import dataclasses
    import enum

    from torch.torch_version import TorchVersion

    from espnet_prune.errors import CheckpointError
    from espnet_prune.infer.wespeaker import WeSpeakerResNet34, load_wespeaker_resnet34
    from espnet_prune.utils.checkpoint import read_checkpoint

    name = "pyannote.audio.core.task"
    module = types.ModuleType(name)

    class Problem(enum.Enum):
        MONO_LABEL_CLASSIFICATION = 1

    @dataclasses.dataclass
    class Specifications:
        problem: Problem
        duration: float

    for cls in (Problem, Specifications):
        cls.__module__, cls.__qualname__ = name, cls.__name__
        setattr(module, cls.__name__, cls)
    state = {f"resnet.{k}": v for k, v in WeSpeakerResNet34().resnet.state_dict().items()}
    path = tmp_path / "pytorch_model.bin"
    sys.modules[name] = module
    try:
        torch.save({"state_dict": state, "pyannote.audio": {
            "versions": {"torch": TorchVersion(torch.__version__)},
            "specifications": Specifications(Problem.MONO_LABEL_CLASSIFICATION, 3.0)}}, path)
    finally:
        del sys.modules[name]
    model = load_wespeaker_resnet34(tmp_path)
    assert torch.equal(model.resnet.seg_1.weight, state["resnet.seg_1.weight"])
    assert name not in sys.modules
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: refusing to unpickle.*"
                       r"pyannote.audio.core.task.*weights_only=False"):
        read_checkpoint(path)
