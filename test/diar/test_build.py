"""The model built from a training config without ESPnet's task (espnet_prune.diar.build, what
inference uses) is the task's model: same modules, same parameters, same output."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml

from espnet_prune.diar.build import build_diarization_model
from espnet_prune.errors import ConfigError
from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2,
           "cnn_module_kernel": 7, "final_norm": False, "layer_norm_eps": 1e-5}


def configs(tmp_path):
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), tmp_path / "wavlm.pt")
    return {
        "fbank": {"frontend": "fbank", "frontend_conf": {"n_mels": 24},
                  "encoder": "conformer", "encoder_conf": dict(ENCODER, output_size=16),
                  "model_conf": {"max_speakers_per_chunk": 3, "max_speakers_per_frame": 2}},
        "wavlm": {"frontend": "wavlm_prunable",
                  "frontend_conf": {"path": str(tmp_path / "wavlm.pt")},
                  "encoder": "Conformer", "encoder_conf": ENCODER,
                  "model_conf": {"max_speakers_per_chunk": 4, "max_speakers_per_frame": 2}},
    }


@pytest.mark.parametrize("name", ["fbank", "wavlm"])
def test_same_model_as_the_task_builds(tmp_path, name):
    from espnet_prune.diar.model_file import build_model
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    conf = configs(tmp_path)[name]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    task_model, _ = PowersetDiarizationTask.build_model_from_file(path, None, "cpu")
    light = build_model(build_diarization_model, path)
    assert repr(light) == repr(task_model)
    assert {k: v.shape for k, v in light.state_dict().items()} == \
        {k: v.shape for k, v in task_model.state_dict().items()}
    light.load_state_dict(task_model.state_dict())
    speech = torch.randn(2, 16000, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([16000, 12000])
    with torch.inference_mode():
        assert torch.equal(light.eval().predict(speech, lengths),
                           task_model.eval().predict(speech, lengths))


def test_unknown_frontend_or_encoder_is_one_error_naming_the_config(tmp_path):
    from espnet_prune.diar.model_file import build_model

    for key, value in (("frontend", "mel"), ("encoder", "transformer")):
        conf = dict(configs(tmp_path)["fbank"], **{key: value})
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump(conf))
        with pytest.raises(ConfigError, match=f"{path}: unknown {key} '{value}'"):
            build_model(build_diarization_model, path)


def test_loading_a_trained_model_does_not_import_espnet_tasks(tmp_path):
    """Inference skips ESPnet's AbsTask (~18 s and ~390 MB of resident memory)."""
    conf = configs(tmp_path)["wavlm"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    torch.save(build_diarization_model(conf).state_dict(), tmp_path / "model.pth")
    code = ("import sys; from espnet_prune.infer.run import load_model; "
            f"load_model({str(path)!r}, {str(tmp_path / 'model.pth')!r}, 'cpu'); "
            "print('TASKS', sorted(m for m in sys.modules if m.startswith('espnet2.tasks') "
            "or m == 'espnet2.train.trainer'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert "TASKS []" in done.stdout, done.stdout[-500:] + done.stderr[-2000:]
