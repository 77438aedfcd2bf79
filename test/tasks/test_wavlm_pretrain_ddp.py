"""``wavlm_pretrain`` with two processes on CPU (gloo), launched the way ``espnet2.bin.launch``
and torchrun launch them: every rank runs ``main``.  Exactly one process fits the k-means
codebook (two fits could give the ranks different targets) and one writes ``wavlm.pt``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from test_wavlm_pretrain import CONFIG, unlabelled_dir

from espnet_prune.errors import CheckpointError
from espnet_prune.tasks.wavlm_pretrain import fits_the_codebook, wait_for_codebook
from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config


def mode(**options) -> argparse.Namespace:
    defaults = dict(multiprocessing_distributed=False, ngpu=0, dist_world_size=None,
                    dist_rank=None, dist_launcher=None, local_rank=None)
    return argparse.Namespace(**{**defaults, **options})


def test_one_process_fits_the_codebook(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert fits_the_codebook(mode())  # one process
    assert fits_the_codebook(mode(dist_world_size=2, dist_rank=0))  # external launch
    assert not fits_the_codebook(mode(dist_world_size=2, dist_rank=1))
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun: the ranks come from the environment
    monkeypatch.setenv("RANK", "3")
    assert not fits_the_codebook(mode())
    monkeypatch.setenv("RANK", "0")
    assert fits_the_codebook(mode())
    # ESPnet spawns the ranks of a node from one parent: node 0's parent fits
    spawned = dict(multiprocessing_distributed=True, ngpu=2, dist_world_size=2)
    assert fits_the_codebook(mode(**spawned, dist_rank=0))
    assert not fits_the_codebook(mode(**spawned, dist_rank=1))
    # the check leaves the arguments as they were (ESPnet resolves them itself)
    args = mode(multiprocessing_distributed=True, ngpu=1)
    fits_the_codebook(args)
    assert args.multiprocessing_distributed is True and not hasattr(args, "distributed")


def test_waiting_rank_gets_the_codebook_or_a_clear_error(tmp_path):
    args = argparse.Namespace(kmeans_path=str(tmp_path / "kmeans.npy"), output_dir=None)
    with pytest.raises(CheckpointError, match="did not appear within 0 s"):
        wait_for_codebook(args, timeout=0.0, poll=0.01)
    np.save(tmp_path / "kmeans.npy", np.zeros((2, 3)))
    assert wait_for_codebook(args, timeout=0.0) == tmp_path / "kmeans.npy"


@pytest.mark.slow
def test_two_ranks_fit_once_and_export_once(tmp_path):
    train = unlabelled_dir(tmp_path / "train", 4)
    valid = unlabelled_dir(tmp_path / "valid", 1, seed=99)
    init = tmp_path / "init.pt"
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), init)
    (tmp_path / "conf.yaml").write_text(CONFIG.replace("max_epoch: 3", "max_epoch: 1"))
    exp = tmp_path / "exp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    procs = []
    for rank in (0, 1):
        log = open(tmp_path / f"rank{rank}.log", "w")
        procs.append((log, subprocess.Popen(
            [sys.executable, "-m", "espnet_prune.bin.wavlm_pretrain",
             "--config", str(tmp_path / "conf.yaml"), "--init_wavlm", str(init),
             "--output_dir", str(exp), "--progress_bar", "false",
             "--train_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
             "--valid_data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound",
             "--ngpu", "0", "--dist_backend", "gloo", "--multiprocessing_distributed", "false",
             "--dist_world_size", "2", "--dist_rank", str(rank),
             "--dist_init_method", f"file://{tmp_path}/init"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)))
    deadline = time.monotonic() + 600
    try:  # a rank that fails leaves the other waiting: stop both at the first failure
        while any(p.poll() is None for _, p in procs) and time.monotonic() < deadline:
            if any(p.poll() for _, p in procs):
                break
            time.sleep(0.2)
    finally:
        for log, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    logs = [(tmp_path / f"rank{rank}.log").read_text() for rank in (0, 1)]
    for rank, (_, proc) in enumerate(procs):
        assert proc.returncode == 0, f"rank {rank}:\n{logs[rank][-3000:]}"
    assert "k-means:" in logs[0] and "k-means:" not in logs[1]
    assert "pre-trained WavLM written" in logs[0]
    assert "pre-trained WavLM written" not in logs[1]
    assert load_wavlm(exp / "wavlm.pt").num_params() == load_wavlm(init).num_params()
