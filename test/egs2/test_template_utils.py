"""The recipe machinery's shell utilities: option parsing and the local/slurm job runners."""

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[2] / "egs2" / "TEMPLATE" / "diar1" / "utils"


def bash(script: str, *args: str, cwd=None, env=None):
    return subprocess.run(
        ["bash", "-c", script, "test-script", *args], capture_output=True, text=True, cwd=cwd,
        env=env,
    )


PARSE = textwrap.dedent(f"""
    stage=1; test_sets="test"; gpu_inference=false; fbank_config=""
    help_message="usage: demo"
    . {UTILS}/parse_options.sh
    echo "stage=$stage test_sets=$test_sets gpu=$gpu_inference fbank=$fbank_config rest=$*"
""")


def test_parse_options_values_and_positionals():
    proc = bash(PARSE, "--stage", "3", "--test-sets=dev test", "pos1",
                "--gpu_inference", "true", "pos 2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "stage=3 test_sets=dev test gpu=true fbank= rest=pos1 pos 2"


def test_parse_options_empty_value_and_later_wins():
    proc = bash(PARSE, "--fbank_config", "a.yaml", "--stage", "2", "--fbank_config", "")
    assert proc.stdout.strip() == "stage=2 test_sets=test gpu=false fbank= rest="


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stgae", "3"], "unknown option --stgae"),
        (["--gpu_inference", "yes"], "--gpu_inference takes true or false"),
        (["--stage"], "option --stage needs a value"),
        (["--config", "/nonexistent.conf"], "config file /nonexistent.conf does not exist"),
    ],
)
def test_parse_options_errors(args, message):
    proc = bash(PARSE, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "stage=" not in proc.stdout


def test_parse_options_config_file_and_help(tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text('stage=5\ntest_sets="a b"\n')
    proc = bash(PARSE, "--config", str(conf), "--stage", "6")
    assert proc.stdout.strip() == "stage=6 test_sets=a b gpu=false fbank= rest="
    proc = bash(PARSE, "--help")
    assert proc.returncode == 0 and proc.stdout.strip() == "usage: demo"


def test_run_local_job_array(tmp_path):
    proc = subprocess.run(
        [str(UTILS / "run_local.sh"), "JOB=1:3", "log/job.JOB.log", "python3", "-c",
         "import sys; print('job', sys.argv[1], 'arg with spaces & $HOME')", "JOB"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    for job in (1, 2, 3):
        text = (tmp_path / f"log/job.{job}.log").read_text()
        assert f"job {job} arg with spaces & $HOME" in text
        assert "# Ended (code 0)" in text


def test_run_local_failure_is_reported(tmp_path):
    proc = subprocess.run(
        [str(UTILS / "run_local.sh"), "--max_jobs_run", "1", "JOB=1:4", "log/j.JOB.log",
         "bash", "-c", "exit $(( JOB % 2 ))"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "2 of 4 jobs failed" in proc.stderr
    assert "# Ended (code 1)" in (tmp_path / "log/j.3.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log/j.2.log").read_text()


def test_run_local_tee_shows_output_and_keeps_status(tmp_path):
    proc = subprocess.run(
        [str(UTILS / "run_local.sh"), "--tee", "true", "--gpu", "0", "train.log",
         "bash", "-c", "echo progress; exit 3"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert proc.returncode == 3
    assert "progress" in proc.stdout
    assert "progress" in (tmp_path / "train.log").read_text()


FAKE_SBATCH = """#!/usr/bin/env bash
# records its options, then runs the batch script for every array task (like sbatch --wait)
echo "$@" > "$FAKE_SBATCH_ARGS"
array=""; for a in "$@"; do case "$a" in --array=*) array="${a#--array=}";; esac; done
script="${@: -1}"; range="${array%%%*}"; first="${range%-*}"; last="${range#*-}"
rc=0
for (( i = first; i <= last; i++ )); do
    SLURM_ARRAY_TASK_ID=$i SLURM_JOB_ID=42 bash "$script" || rc=1
done
exit $rc
"""


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH)
    sbatch.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
               FAKE_SBATCH_ARGS=str(tmp_path / "sbatch_args"), SLURM_PARTITION="gpu")
    return env


def test_run_slurm_array_and_resources(tmp_path, fake_slurm):
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [str(UTILS / "run_slurm.sh"), "--gpu", "2", "--mem", "8G", "--num_threads", "3",
         "--max_jobs_run", "2", "JOB=1:3", "exp/log/inf.JOB.log", "echo", "task JOB 'q'"],
        cwd=work, capture_output=True, text=True, env=fake_slurm,
    )
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "sbatch_args").read_text().split()
    for option in ("--wait", "--gres=gpu:2", "--mem=8G", "--cpus-per-task=3",
                   "--array=1-3%2", "--partition=gpu", f"--chdir={work}"):
        assert option in args
    for job in (1, 2, 3):
        text = (work / f"exp/log/inf.{job}.log").read_text()
        assert f"task {job} 'q'" in text and "# Ended (code 0)" in text


def test_run_slurm_failure(tmp_path, fake_slurm):
    proc = subprocess.run(
        [str(UTILS / "run_slurm.sh"), "train.log", "bash", "-c", "exit 5"],
        cwd=tmp_path, capture_output=True, text=True, env=fake_slurm,
    )
    assert proc.returncode == 1
    assert "slurm job failed" in proc.stderr
    assert "# Ended (code 5)" in (tmp_path / "train.log").read_text()
