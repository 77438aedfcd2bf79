"""diar_inference end to end with a real (tiny, untrained) model built through the ESPnet task
and saved in ESPnet's exp layout (config.yaml + a state dict). Imports espnet2 once."""

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_prune.bin import diar_inference
from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.utils.rttm import read_rttm

RATE = 16000
TINY = {
    "frontend": "fbank",
    "frontend_conf": {"n_mels": 40},
    "encoder": "conformer",
    "encoder_conf": dict(
        output_size=32, attention_heads=2, linear_units=64, num_blocks=1, cnn_module_kernel=7
    ),
}


def make_exp(tmp_path, favourite_class=None):
    """ESPnet-style exp dir; ``favourite_class`` makes the classifier always pick that class."""
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    given = tmp_path / f"train_{favourite_class}.yaml"
    given.write_text(yaml.safe_dump(TINY))
    args = PowersetDiarizationTask.get_parser().parse_args(["--config", str(given)])
    torch.manual_seed(0)
    model = PowersetDiarizationTask.build_model(args)
    if favourite_class is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.fill_(-10.0)
            model.classifier.bias[favourite_class] = 10.0
    exp = tmp_path / f"exp_{favourite_class}"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    return exp, model


def make_scp(tmp_path, seconds=(10.0, 3.0)):
    rng = np.random.default_rng(0)
    lines = []
    for index, duration in enumerate(seconds):
        time = np.arange(int(duration * RATE)) / RATE
        audio = 0.2 * np.sin(2 * np.pi * (150 + 60 * index) * time) + 0.01 * rng.normal(
            size=time.size
        )
        path = tmp_path / f"rec{index}.wav"
        sf.write(path, audio.astype(np.float32), RATE)
        lines.append(f"rec{index} {path}\n")
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(lines))
    return scp


def run(exp, scp, out, *extra, model_file=None):
    return diar_inference.main(
        ["--model_file", str(model_file or exp / "valid.loss.ave.pth"),
         "--train_config", str(exp / "config.yaml"), "--wav_scp", str(scp),
         "--output_dir", str(out), "--no_progress", *extra]
    )


def test_cli_with_task_built_model(tmp_path):
    # class 1 = speaker 0 alone: the whole of every recording is one speaker's speech
    exp, model = make_exp(tmp_path, favourite_class=1)
    assert model.powerset.to_multilabel(torch.tensor(1)).tolist() == [1, 0, 0, 0]
    scp = make_scp(tmp_path)
    conf = tmp_path / "inference.yaml"
    conf.write_text("window: 4.0\nstep: 2.0\nbatch_size: 3\n")
    out = tmp_path / "out"
    assert run(exp, scp, out, "--config", str(conf)) == 0
    combined = read_rttm(out / "rttm")
    assert sorted(combined) == ["rec0", "rec1"]
    for rec, duration in (("rec0", 10.0), ("rec1", 3.0)):
        assert read_rttm(out / "rttm_per_recording" / f"{rec}.rttm")[rec] == combined[rec]
        (segment,) = combined[rec]
        # frame 0's time is the middle of its receptive field, 12.5 ms (the reference's)
        assert segment.start == 0.012
        # last frame centre region ends within one frame of the end of the audio
        assert abs(segment.start + segment.duration - duration) < 0.03, segment

    # silence class everywhere: documented empty output, empty per-recording files
    quiet, _ = make_exp(tmp_path, favourite_class=0)
    out = tmp_path / "out_quiet"
    assert run(quiet, scp, out, "--config", str(conf)) == 0
    assert (out / "rttm").read_text() == ""
    assert (out / "rttm_per_recording" / "rec0.rttm").read_text() == ""

    # bad checkpoints name the file and the key; missing files are clear errors
    state = torch.load(exp / "valid.loss.ave.pth", weights_only=True)
    state["classifier.weight"] = torch.zeros(11, 7)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match="bad.pth.*classifier.weight"):
        run(exp, scp, tmp_path / "o2", model_file=bad)
    del state["classifier.weight"]
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match="missing key 'classifier.weight'"):
        run(exp, scp, tmp_path / "o2", model_file=bad)
    with pytest.raises(CheckpointError, match="nope.pth"):
        run(exp, scp, tmp_path / "o2", model_file=tmp_path / "nope.pth")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            run(exp, scp, tmp_path / "o2", "--ngpu", "1")
