"""End to end: the mini_meeting recipe, all stages (packing included), with its CI-sized
configs (--fast true).

Also checks what a user relies on: killing run.sh during training and running it again resumes
the training; a second run skips all finished work; ``--stage 7`` redoes only inference and
scoring.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2" / "mini_meeting" / "diar1"
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "diar1"
MODELS = ("fbank", "teacher", "pruned", "pruned_pt")
TEST_SETS = ("test", "sample")


def make_work_dir(tmp_path: Path) -> Path:
    """A copy of the recipe (its own data/ and exp/) linked to the real template."""
    work = tmp_path / "egs2" / "mini_meeting" / "diar1"
    work.mkdir(parents=True)
    for name in ("run.sh", "db.sh", "conf", "local"):
        source = RECIPE / name
        if source.is_dir():
            shutil.copytree(source, work / name)
        else:
            shutil.copy2(source, work / name)
    for name in ("diar.sh", "path.sh", "cmd.sh", "utils"):
        (work / name).symlink_to(TEMPLATE / name)
    return work


def env():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))


def run(work: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(["./run.sh", "--fast", "true", *args], cwd=work, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return proc


def stage_runs(work: Path) -> list[str]:
    return [line.split("\t")[0]
            for line in (work / "exp" / "stage_times.tsv").read_text().splitlines()]


@pytest.mark.slow
def test_mini_meeting_end_to_end(tmp_path):
    work = make_work_dir(tmp_path)
    exp = work / "exp"

    # 1) start, and kill the whole run once the teacher has finished its first epoch
    proc = subprocess.Popen(["./run.sh", "--fast", "true", "--stop_stage", "3"], cwd=work,
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    try:
        while not (exp / "teacher" / "checkpoint.pth").exists():
            assert proc.poll() is None, "run.sh ended before the teacher's first checkpoint"
            assert time.time() < deadline, "no teacher checkpoint after 10 minutes"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert not (exp / "teacher" / "valid.loss.ave.pth").exists()

    # 2) run again to the end: the teacher resumes at epoch 2
    started = time.time()
    out = run(work).stdout
    full_run_seconds = time.time() - started
    teacher_log = (exp / "teacher" / "train.log").read_text()
    assert "2/2epoch started" in teacher_log and "1/2epoch started" not in teacher_log
    assert "WavLM pre-training: done" in out  # finished before the kill: not redone

    for dset in ("train", "dev", *TEST_SETS, "pretrain", "pretrain_valid"):
        assert (work / "data" / dset / "wav.scp").is_file()
        assert (work / "dump" / dset / "reco2dur").is_file()
    assert not (work / "data" / "pretrain" / "rttm").exists()  # unlabelled
    assert (exp / "wavlm_init" / "wavlm_mini.pt").is_file()
    # the teacher fine-tunes the WavLM pre-trained in stage 3, not the random init
    assert (exp / "wavlm_pretrain" / "kmeans.npy").is_file()
    teacher_config = (exp / "teacher" / "config.yaml").read_text()
    assert "wavlm_pretrain/wavlm.pt" in teacher_config
    # stage 7 also meets a recording whose last inference window is partial and alone in its
    # batch (618,513 samples: 17 windows of 8 s every 2 s, batches of 8), once a crash
    import soundfile as sf

    test_wav = Path((work / "data" / "test" / "wav.scp").read_text().split()[1])
    assert sf.info(str(test_wav if test_wav.is_absolute() else work / test_wav)).frames == 618_513
    for name in ("wavlm_teacher.pt", "wavlm_masked.pt", "gates.png", "wavlm_pruned_raw.pt",
                 "wavlm_pruned.pt"):
        assert (exp / "prune" / name).is_file(), name
    for model in MODELS:
        assert (exp / model / "valid.loss.ave.pth").exists()
        for dset in TEST_SETS:
            decode = exp / model / "decode_inference" / dset
            assert (decode / "rttm").is_file() and (decode / "score.json").is_file()
            assert list((decode / "rttm_per_recording").glob("*.rttm"))

    scores = json.loads((exp / "scores.json").read_text())
    assert set(scores) == set(MODELS)
    for model in MODELS:
        assert set(scores[model]) == set(TEST_SETS)
        for dset in TEST_SETS:
            entry = scores[model][dset]
            assert isinstance(entry["der"], float) and 0.0 <= entry["der"] < 1.0, entry
            assert isinstance(entry["jer"], float)
    assert scores["pruned"]["test"]["params"] < scores["teacher"]["test"]["params"]
    # the default run prunes in both orders (the DPHuBERT order: the pre-trained WavLM)
    assert (exp / "prune_pt" / "wavlm_pruned.pt").is_file()
    assert scores["pruned_pt"]["test"]["params"] < scores["teacher"]["test"]["params"]
    assert scores["fbank"]["test"]["params"] == 0
    # the mini run.sh times 30 forwards per WavLM (diar.sh's default: 5), see its comment
    assert len(json.loads((exp / "teacher" / "wavlm_bench.json").read_text())["times"]) == 30
    results = (work / "RESULTS.md").read_text()
    assert "## Environments" in results and "|teacher|" in results and "- wall time:" in results
    assert "|prune -> fine-tune|" in results and "|fine-tune -> prune|" in results

    # stage 9: one archive per model, loadable from anywhere, with the recipe's inference
    # settings (conf/inference.yaml: 2 s step) and a card naming the run.sh command
    import zipfile

    for model in MODELS:
        with zipfile.ZipFile(exp / "packed" / f"{model}.zip") as archive:
            names = set(archive.namelist())
            card = archive.read("README.md").decode()
            packed_conf = archive.read(f"exp/{model}/inference.yaml").decode()
        assert {"meta.yaml", f"exp/{model}/config.yaml", f"exp/{model}/valid.loss.ave.pth",
                f"exp/{model}/RESULTS.md"} <= names
        assert "step: 2.0" in packed_conf
        assert "run.sh --fast true" in card and f"{100 * scores[model]['test']['der']:.2f}" in card

    # 3) a second run finds everything done
    before = stage_runs(work)
    checkpoint_mtime = (exp / "pruned" / "valid.loss.ave.pth").stat().st_mtime
    started = time.time()
    out = run(work).stdout
    assert stage_runs(work) == before, out[-3000:]
    assert "Stage 4: skipped" in out and "Stage 6: skipped" in out
    assert time.time() - started < full_run_seconds / 2

    # 4) --stage 7 redoes inference and scoring only (one model and set: each inference
    #    process loads ESPnet and the speaker encoder, which is most of its time)
    rttm = exp / "teacher" / "decode_inference" / "sample" / "rttm"
    rttm_mtime = rttm.stat().st_mtime
    run(work, "--stage", "7", "--models", "teacher", "--test_sets", "sample")
    assert stage_runs(work) == before + ["7", "8", "9"]  # 9: the teacher repacked
    assert rttm.stat().st_mtime > rttm_mtime
    assert (exp / "pruned" / "valid.loss.ave.pth").stat().st_mtime == checkpoint_mtime
    rescored = json.loads((exp / "scores.json").read_text())
    assert list(rescored) == ["teacher"] and list(rescored["teacher"]) == ["sample"]
