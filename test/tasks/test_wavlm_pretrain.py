"""``wavlm_pretrain`` end to end with ESPnet's trainer on a tiny unlabelled corpus: the loss
falls, the result is a WavLM checkpoint that a diarization teacher starts from and that
prunes, a finished run is resumed without training again, and bad input is one line."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from diar_fixtures import run_module, synth_speaker_signal

from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config


def unlabelled_dir(root, num: int, seconds: float = 6.0, seed: int = 0):
    """``wav.scp`` only (no rttm): recordings where three synthetic voices take turns."""
    (root / "wav").mkdir(parents=True)
    lines = []
    for i in range(num):
        n = int(seconds * 16000)
        parts = [synth_speaker_signal(n // 3, (i + k) % 3, seed=seed + 10 * i + k)
                 for k in range(3)]
        audio = np.concatenate(parts + [np.zeros(n - 3 * (n // 3), np.float32)])
        path = root / "wav" / f"u{i}.wav"
        sf.write(str(path), audio, 16000)
        lines.append(f"u{i} {path}")
    (root / "wav.scp").write_text("\n".join(lines) + "\n")
    return root


CONFIG = """\
num_clusters: 12
kmeans_n_init: 2
chunk_size: 2.0
chunk_shift: 1.0
batch_size: 4
num_iters_per_epoch: 12
optim: adamw
optim_conf:
    lr: 0.003
max_epoch: 3
keep_nbest_models: 1
num_workers: 0
seed: 0
"""


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    train = unlabelled_dir(root / "train", 4)
    valid = unlabelled_dir(root / "valid", 1, seed=99)
    init = root / "init.pt"
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), init)
    (root / "conf.yaml").write_text(CONFIG)
    args = ["espnet_prune.bin.wavlm_pretrain", "--config", str(root / "conf.yaml"),
            "--init_wavlm", str(init), "--output_dir", str(root / "exp"),
            "--train_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound",
            "--progress_bar", "false"]
    run_module(args, cwd=root)
    return root, args, init


def reporter_stats(exp):
    from espnet_prune.diar.model_file import read_run_state

    return read_run_state(exp / "checkpoint.pth")["reporter"]["stats"]


def test_loss_falls_and_masked_accuracy_rises(pretrained):
    root, _, _ = pretrained
    stats = reporter_stats(root / "exp")
    first, last = stats[1], stats[3]
    assert last["train"]["loss"] < first["train"]["loss"] - 0.3
    assert last["valid"]["loss"] < first["valid"]["loss"]
    assert last["train"]["acc_masked"] > 2 / 12  # chance: 1 / 12 clusters
    centroids = np.load(root / "exp" / "kmeans.npy")
    assert centroids.shape == (12, 39)


def test_result_is_the_teachers_wavlm_init_and_prunes(pretrained):
    from espnet_prune.diar.build import build_diarization_model

    root, _, init = pretrained
    result = load_wavlm(root / "exp" / "wavlm.pt")
    before = load_wavlm(init)
    assert result.config.to_dict() == before.config.to_dict()
    changed = [k for k, v in result.state_dict().items()
               if not torch.equal(v, before.state_dict()[k])]
    assert len(changed) > len(result.state_dict()) // 2  # pre-training moved the weights
    teacher = build_diarization_model({
        "frontend": "wavlm_prunable", "frontend_conf": {"path": str(root / "exp" / "wavlm.pt")},
        "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 32,
                         "num_blocks": 1}})
    for key, value in result.state_dict().items():
        assert torch.equal(teacher.frontend.wavlm.state_dict()[key], value), key
    # it prunes as any WavLM does
    result.add_pruning_gates()
    assert result.expected_num_params() > 0
    assert result.prune().to_dict()["num_layers"] == before.config.num_layers


def test_finished_run_resumes_without_training_and_keeps_the_codebook(pretrained):
    root, args, _ = pretrained
    exp = root / "exp"
    codebook = (exp / "kmeans.npy").read_bytes()
    mtime = (exp / "3epoch.pth").stat().st_mtime_ns
    run_module([*args, "--resume", "true"], cwd=root)
    assert (exp / "kmeans.npy").read_bytes() == codebook
    assert (exp / "3epoch.pth").stat().st_mtime_ns == mtime
    assert not (exp / "4epoch.pth").exists()
    assert load_wavlm(exp / "wavlm.pt").config.num_layers == 3


def run_cli(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_bad_input_is_one_line(pretrained, tmp_path):
    root, args, _ = pretrained
    base = [a if a != str(root / "exp") else str(tmp_path / "exp") for a in args]
    missing_init = [a if not a.endswith("init.pt") else str(tmp_path / "nope.pt") for a in base]
    no_init = base[:3] + base[5:]
    labelled_mask = [*base, "--model_conf", "bogus=1"]
    for bad, message in [(missing_init, "nope.pt"), (no_init, "--init_wavlm"),
                         (labelled_mask, "bogus")]:
        proc = run_cli(bad, root)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert message in proc.stderr and "Traceback" not in proc.stderr
