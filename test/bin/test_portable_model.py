"""A trained model is portable: its config.yaml + model file diarize from any directory, after
the exp dir is moved and the WavLM init checkpoint it was trained from is deleted."""

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from diar_fixtures import run_module

from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

REPO = Path(__file__).resolve().parents[2]

TEACHER_CONFIG = {
    "frontend": "wavlm_prunable",
    "frontend_conf": {"path": "exp/wavlm_init/wavlm_tiny.pt"},  # relative, as in the recipes
    "encoder": "conformer",
    "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64,
                     "num_blocks": 1, "cnn_module_kernel": 7},
    "model_conf": {"max_speakers_per_chunk": 3, "max_speakers_per_frame": 2},
    "optim": "adamw", "optim_conf": {"lr": 0.003},
    "batch_size": 4, "max_epoch": 1, "chunk_size": 2.0, "chunk_shift": 2.0,
    "num_workers": 0, "keep_nbest_models": 1, "use_matplotlib": False, "seed": 0,
    "progress_bar": False,
}


def python(args, cwd, timeout=600):
    return run_module(args, cwd, timeout)


def test_moved_exp_without_init_file_diarizes_from_another_directory(tmp_path, tiny_data_dir):
    recipe = tmp_path / "recipe"
    (recipe / "exp" / "wavlm_init").mkdir(parents=True)
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), recipe / "exp" / "wavlm_init" / "wavlm_tiny.pt")
    (recipe / "train.yaml").write_text(yaml.safe_dump(TEACHER_CONFIG))
    python(["espnet_prune.bin.diar_train", "--config", "train.yaml",
            "--train_data_path_and_name_and_type", f"{tiny_data_dir}/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{tiny_data_dir}/wav.scp,speech,sound",
            "--output_dir", "exp/teacher", "--ngpu", "0"], cwd=recipe)
    stored = yaml.safe_load((recipe / "exp" / "teacher" / "config.yaml").read_text())
    assert stored["frontend_conf"]["config"]["num_layers"] == \
        wavlm_config("tiny").num_layers

    # share the exp dir: move it elsewhere, delete the init checkpoint and the recipe
    shared = tmp_path / "elsewhere" / "teacher"
    shared.parent.mkdir()
    shutil.move(recipe / "exp" / "teacher", shared)
    shutil.rmtree(recipe)

    audio = 0.1 * np.random.default_rng(0).normal(size=5 * 16000)
    sf.write(tmp_path / "rec.wav", audio.astype(np.float32), 16000)
    (tmp_path / "wav.scp").write_text(f"rec {tmp_path / 'rec.wav'}\n")
    somewhere = tmp_path / "cwd"
    somewhere.mkdir()
    model_file = shared / "valid.loss.ave.pth"
    python(["espnet_prune.bin.diar_inference", "--model_file", str(model_file),
            "--train_config", str(shared / "config.yaml"), "--wav_scp", str(tmp_path / "wav.scp"),
            "--output_dir", str(tmp_path / "out"), "--no_progress",
            "--config", str(write_inference_config(tmp_path))], cwd=somewhere)
    assert (tmp_path / "out" / "rttm_per_recording" / "rec.rttm").is_file()

    # and the weights are the trained ones, not a fresh random WavLM
    from espnet_prune.infer.run import load_model

    model = load_model(str(shared / "config.yaml"), str(model_file), "cpu")
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def write_inference_config(tmp_path):
    path = tmp_path / "inference.yaml"
    path.write_text("window: 2.0\nstep: 1.0\nbatch_size: 4\n")
    return path


def test_old_config_with_only_a_path_still_loads(tmp_path):
    """Configs written before the WavLM config was stored (``path:`` only) load while the file
    exists."""
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    init = tmp_path / "wavlm.pt"
    save_wavlm(WavLM(wavlm_config("tiny")), init)
    old = dict(TEACHER_CONFIG, frontend_conf={"path": str(init)})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(old))
    model, _ = PowersetDiarizationTask.build_model_from_file(config, None, "cpu")
    assert model.frontend.wavlm.config.num_layers == wavlm_config("tiny").num_layers
