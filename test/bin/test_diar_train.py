"""diar_train end to end on a tiny synthetic data dir: ESPnet exp layout, kill + resume."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from espnet_prune.errors import DataError

REPO = Path(__file__).resolve().parents[2]

TINY_CONFIG = {
    "frontend": "fbank",
    "frontend_conf": {"n_mels": 40},
    "encoder": "conformer",
    "encoder_conf": {
        "output_size": 32,
        "attention_heads": 2,
        "linear_units": 64,
        "num_blocks": 1,
        "cnn_module_kernel": 7,
    },
    "model_conf": {"max_speakers_per_chunk": 3, "max_speakers_per_frame": 2},
    "optim": "adamw",
    "optim_conf": {"lr": 0.003},
    "grad_clip": 5.0,
    "batch_size": 4,
    "max_epoch": 2,
    "chunk_size": 2.0,
    "chunk_shift": 1.0,
    "valid_chunk_shift": 2.0,
    "num_workers": 0,
    "keep_nbest_models": 2,
    "use_matplotlib": False,
    "seed": 0,
}
# two 6 s recordings: 2 x 5 training chunks (1 s shift), 2 x 3 validation chunks
TRAIN_CHUNKS, VALID_CHUNKS = 10, 6

# Runs diar_train and SIGKILLs itself when the n-th chunk is read (deterministic mid-epoch kill).
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from espnet_prune.diar import data
    from espnet_prune.bin.diar_train import main

    kill_at, reads = int(sys.argv[1]), [0]
    original = data.DiarizationChunkDataset.__getitem__

    def getitem(self, key):
        reads[0] += 1
        if reads[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, key)

    data.DiarizationChunkDataset.__getitem__ = getitem
    main(sys.argv[2:])
    """
)


def train_argv(config, data_dir, output_dir, *extra):
    return [
        "--config", str(config),
        "--train_data_path_and_name_and_type", f"{data_dir}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{data_dir}/wav.scp,speech,sound",
        "--output_dir", str(output_dir),
        "--ngpu", "0",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "train_tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_CONFIG))
    return path


def test_train_two_epochs_killed_mid_epoch_then_resumed(
    tmp_path, config, tiny_data_dir, monkeypatch
):
    exp = tmp_path / "exp"
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    # epoch 1 reads all training and validation chunks; die on the 6th chunk of epoch 2
    kill_at = TRAIN_CHUNKS + VALID_CHUNKS + 6
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(killer), str(kill_at), *train_argv(config, tiny_data_dir, exp)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == -9, run.stderr[-3000:]
    assert (exp / "config.yaml").exists() and (exp / "1epoch.pth").exists()
    assert not (exp / "2epoch.pth").exists()
    killed_state = torch.load(exp / "checkpoint.pth", weights_only=False)
    assert killed_state["reporter"]["epoch"] == 1
    first_epoch_mtime = (exp / "1epoch.pth").stat().st_mtime_ns

    # resume in this process and count the chunks it reads: one epoch only
    from espnet_prune.bin.diar_train import main
    from espnet_prune.diar import data

    reads = []
    original = data.DiarizationChunkDataset.__getitem__
    monkeypatch.setattr(
        data.DiarizationChunkDataset,
        "__getitem__",
        lambda self, key: reads.append(key) or original(self, key),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main(train_argv(config, tiny_data_dir, exp, "--resume", "true"))
    finally:
        torch.set_num_threads(threads)
    assert len(reads) == TRAIN_CHUNKS + VALID_CHUNKS
    state = torch.load(exp / "checkpoint.pth", weights_only=False)
    assert state["reporter"]["epoch"] == 2
    assert state["reporter"]["stats"][1] == killed_state["reporter"]["stats"][1]
    assert (exp / "1epoch.pth").stat().st_mtime_ns == first_epoch_mtime
    for name in ("config.yaml", "checkpoint.pth", "2epoch.pth", "valid.loss.ave.pth"):
        assert (exp / name).exists(), name
    assert len(state["optimizers"][0]["param_groups"]) == 1  # fbank: no upstream group

    from espnet_prune.tasks.diar import PowersetDiarizationTask

    model, args = PowersetDiarizationTask.build_model_from_file(
        exp / "config.yaml", exp / "valid.loss.ave.pth", "cpu"
    )
    assert args.frontend == "fbank" and args.chunk_shift == 1.0
    model.eval()
    with torch.no_grad():
        log_probs = model.predict(torch.zeros(1, 32000))
    assert log_probs.shape == (1, 198, 7)


def test_bad_data_dir_fails_before_building_the_model(tmp_path, config, tiny_data_dir):
    from espnet_prune.bin.diar_train import main

    with open(tiny_data_dir / "rttm", "a") as fh:
        fh.write("SPEAKER ghost 1 0.5 1.0 <NA> <NA> spk0 <NA> <NA>\n")
    exp = tmp_path / "exp"
    with pytest.raises(DataError, match="rttm:6.*ghost"):
        main(train_argv(config, tiny_data_dir, exp))
    assert not (exp / "config.yaml").exists()
